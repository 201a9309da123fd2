#!/usr/bin/env bash
# One command from a fresh clone: what the demo through the archive needs from Debian (Orthanc with
# its DICOMweb plugin, dcmtk's storescu; apt, with sudo when not root), the project in .venv, then
# `prosima demo --archive`: the demo on the embedded brain, then through `prosima serve` and a
# private Orthanc (stores over DICOM, anchoring, verify, restore and store back). Report:
# out/demo/report.html. Extra arguments go to `prosima demo`.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v storescu >/dev/null 2>&1 || need+=(dcmtk)
{ command -v Orthanc >/dev/null 2>&1 || [ -x /usr/sbin/Orthanc ]; } || need+=(orthanc orthanc-dicomweb)
if [ "${#need[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
pip install --quiet -e ".[dev,bench]"
prosima demo --archive --out out/demo "$@"
