#!/usr/bin/env bash
# Runs the numpy reference tests/ref/quant_ref.py with Debian's python3 and numpy (the
# python3 first on PATH may be another one); exits 77, which CTest reports as a skip, where
# they are missing.   tests/ref/quant_ref.sh QUANT_DUMP formats|calib
py=/usr/bin/python3
if ! [ -x "$py" ] || ! "$py" -c 'import numpy' 2>/dev/null; then
  echo "quant_ref: skipped, /usr/bin/python3 with numpy (Debian python3-numpy) not installed"
  exit 77
fi
exec "$py" "$(dirname "$0")/quant_ref.py" "$@"
