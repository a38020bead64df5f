"""Writers for scan results: table (rich), json, sarif, markdown. Writers never compute; they format."""

from __future__ import annotations

from apitrail.output.scan_writers import FORMATS, ScanResult, render_scan

__all__ = ["FORMATS", "ScanResult", "render_scan"]
