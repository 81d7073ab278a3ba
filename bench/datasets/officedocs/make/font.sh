#!/bin/sh
# Put WenQuanYi Micro Hei as a TrueType file in build/ (of the current folder), for Chromium to
# embed as a font subset. From the installed Debian package if there is one, else from the
# package file fetched with apt-get download (nothing is installed).
set -eu
mkdir -p build
[ -f build/wqy-microhei.ttf ] && exit 0
ttc=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
if [ ! -f "$ttc" ]; then
    (cd build && apt-get download fonts-wqy-microhei && dpkg-deb -x fonts-wqy-microhei_*.deb wqy)
    ttc=build/wqy/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
fi
"${PY:-python3}" -c "
import sys
from fontTools.ttLib import TTCollection
TTCollection(sys.argv[1]).fonts[0].save('build/wqy-microhei.ttf')
" "$ttc"
