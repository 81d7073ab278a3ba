#!/bin/sh
# Remake the generated documents of the held-out set from the sources in this folder:
#   documents/leave_policy.docx, documents/travel_expense.docx   python-docx (make_docx.py)
#   documents/procurement_policy.pdf   LibreOffice Writer from build/procurement_policy.docx
#   documents/employee_handbook.pdf    Chromium's print to PDF of employee_handbook.html
# Needs: the project's venv (python-docx, fontTools), soffice (apt-get install
# libreoffice-writer-nogui) and /usr/bin/chromium. PDFs carry their creation time, so a remade
# file differs in bytes from the committed one; the committed files are the frozen set.
set -eu
cd "$(dirname "$0")"
PY="${PY:-$(cd ../../../.. && pwd)/.venv/bin/python}"
export PY
DOCS=../documents
mkdir -p build
"$PY" make_docx.py
soffice --headless --convert-to pdf --outdir build build/procurement_policy.docx
cp build/procurement_policy.pdf "$DOCS/procurement_policy.pdf"
sh font.sh
/usr/bin/chromium --headless --no-sandbox --disable-gpu --allow-file-access-from-files \
    --no-pdf-header-footer --print-to-pdf="$DOCS/employee_handbook.pdf" employee_handbook.html
ls -l "$DOCS"
