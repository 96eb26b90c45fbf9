"""Write the e-invoice embedded in each Factur-X PDF beside it (``x.pdf`` ->
``x.embedded.cii.xml``), for the EN 16931 rules to check the XML a PDF carries."""

from __future__ import annotations

import sys
from pathlib import Path

from pypdf import PdfReader


def main(paths: list[str]) -> None:
    for name in paths:
        pdf = Path(name)
        (content,) = PdfReader(pdf).attachments["factur-x.xml"]
        target = pdf.with_name(pdf.stem + ".embedded.cii.xml")
        target.write_bytes(content)
        print(target)


if __name__ == "__main__":
    main(sys.argv[1:])
