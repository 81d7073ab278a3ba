#!/bin/sh
# Remake the generated documents of the validation set from the sources in this folder:
#   documents/training_policy.docx   python-docx (make_docx.py, with ../../officedocs/make/docxkit.py)
#   documents/admin_services.pdf     Chromium's print to PDF of admin_services.html
# Needs the project's venv (python-docx, fontTools) and /usr/bin/chromium. PDFs carry their
# creation time, so a remade file differs in bytes from the committed one, which is the set.
set -eu
cd "$(dirname "$0")"
PY="${PY:-$(cd ../../../.. && pwd)/.venv/bin/python}"
export PY
DOCS=../documents
"$PY" make_docx.py
sh ../../officedocs/make/font.sh
/usr/bin/chromium --headless --no-sandbox --disable-gpu --allow-file-access-from-files \
    --no-pdf-header-footer --print-to-pdf="$DOCS/admin_services.pdf" admin_services.html
ls -l "$DOCS"
