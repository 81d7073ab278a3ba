"""Write the validation set's Word file (fictional company 青禾科技; MIT like the project).

    .venv/bin/python bench/datasets/officedocs_validation/make/make_docx.py

Writes documents/training_policy.docx with the held-out set's helpers (docxkit).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "officedocs" / "make"))

from docxkit import bullets, new_document, numbered, table, title  # noqa: E402

DOCUMENTS = HERE.parent / "documents"


def training_policy(path: Path) -> None:
    d = new_document("青禾科技有限公司培训与进修管理办法", "青禾科技人力资源部")
    title(d, "青禾科技有限公司培训与进修管理办法", "（2025年3月修订）")

    d.add_heading("一、总则", level=1)
    d.add_paragraph(
        "为提升员工的专业能力，规范培训经费的使用，制定本办法。本办法适用于公司全体正式员工；"
        "试用期员工只参加公司组织的内部培训。"
    )
    d.add_paragraph("人力资源部培训组负责年度培训计划的制定、培训经费的管理和培训效果的评估。")

    d.add_heading("二、培训分类", level=1)
    table(
        d,
        [
            ["类别", "培训形式", "组织部门", "费用承担"],
            [None, "新员工入职培训", "人力资源部", "公司承担"],
            [None, "通用技能培训（沟通、写作、时间管理）", "人力资源部", "公司承担"],
            [None, "专业技术分享会", "各部门", "公司承担"],
            [None, "外部公开课", "员工申请，部门负责人审批", None],
            [None, "行业会议", "员工申请，部门负责人审批", None],
            [None, "学历进修", "员工申请，人力资源部审批", "按学历进修报销标准"],
            [None, None, None, None],
        ],
        merges=[
            ((1, 0), (3, 0), "内部培训"),
            ((4, 0), (6, 0), "外部培训"),
            ((4, 3), (5, 3), "公司承担，计入部门培训预算"),
            ((7, 0), (7, 3), "注：每位员工每年参加内部培训不少于24学时。"),
        ],
    )

    d.add_heading("三、外部培训的审批", level=1)
    d.add_paragraph("外部培训按单次培训费用确定审批人：")
    table(
        d,
        [
            ["单次培训费用", "审批人"],
            ["3000元以下", "部门负责人"],
            ["3000元（含）至1万元", "部门负责人、人力资源部培训组"],
            ["1万元（含）以上", "部门负责人、人力资源部负责人、分管副总裁"],
        ],
    )
    numbered(
        d,
        [
            "员工在培训开始前至少10个工作日，在OA系统“培训申请”中提交申请，附课程介绍和报价。",
            (
                "按上表的权限审批：",
                [
                    "部门负责人确认培训内容与岗位相关；",
                    "人力资源部培训组核对年度培训预算。",
                ],
            ),
            "审批通过后，由人力资源部统一报名和付款，员工原则上不垫付费用。",
            "培训结束后15个工作日内，员工提交培训总结，并在部门内做一次分享。",
        ],
    )

    d.add_heading("四、服务期", level=1)
    d.add_paragraph(
        "公司为员工支付的单次外部培训费用或学历进修费用达到1万元的，员工须签订培训服务协议，"
        "服务期按费用确定："
    )
    table(
        d,
        [
            ["公司支付的费用", "服务期"],
            ["1万元（含）至3万元", "1年"],
            ["3万元（含）至5万元", "2年"],
            ["5万元（含）以上", "3年"],
        ],
    )
    d.add_paragraph(
        "员工在服务期内主动离职的，按服务期尚未履行的部分所对应的培训费用赔偿公司。"
        "公司依法解除劳动合同的，员工无需赔偿。"
    )

    d.add_heading("五、学历进修", level=1)
    d.add_paragraph(
        "在公司工作满2年、最近一次绩效考核为B及以上的员工，可以申请与岗位相关的学历进修。"
        "学费在取得毕业证书后按下表报销，学习期间的交通、住宿和教材费用自理。"
    )
    table(
        d,
        [
            ["进修学历", "报销比例", "报销上限"],
            ["专升本", "70%", "1.5万元"],
            ["硕士研究生", "60%", "4万元"],
            ["MBA、EMBA", "50%", "8万元"],
        ],
    )

    d.add_heading("六、职业资格证书奖励", level=1)
    d.add_paragraph("员工取得与岗位相关的职业资格证书的，考试费由公司报销，并给予一次性奖励：")
    bullets(
        d,
        [
            "注册会计师（CPA）、法律职业资格：奖励8000元；",
            "PMP项目管理专业人士、系统架构设计师：奖励3000元；",
            "其他经人力资源部认定的中级证书：奖励1000元。",
        ],
    )
    d.add_paragraph("同一证书只奖励一次；考试未通过的，考试费不予报销。")

    d.add_heading("七、附则", level=1)
    d.add_paragraph("本办法由人力资源部负责解释，自发布之日起施行。")
    d.save(path)


if __name__ == "__main__":
    training_policy(DOCUMENTS / "training_policy.docx")
