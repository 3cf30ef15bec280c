"""Renders public/icons/icon.svg to the PNG sizes the manifest names (run when the logo changes):
    ../.venv/bin/python scripts/icons.py   (needs the playwright package and /usr/bin/chromium)"""
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent.parent / "public" / "icons"
svg = (HERE / "icon.svg").read_text()
maskable = svg.replace('rx="112"', 'rx="0"').replace('<path d=', '<g transform="translate(51 51) scale(0.8)"><path d=').replace(
    '<circle cx="362" cy="152" r="22" fill="#a5b4fc"/>', '<circle cx="362" cy="152" r="22" fill="#a5b4fc"/></g>')

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"])
    page = browser.new_page()
    for name, source, size in (("icon-192.png", svg, 192), ("icon-512.png", svg, 512), ("icon-maskable-512.png", maskable, 512)):
        page.set_viewport_size({"width": size, "height": size})
        page.set_content(f'<html><body style="margin:0;background:transparent">'
                         f'<div style="width:{size}px;height:{size}px">{source.replace("<svg ", f"<svg width={size} height={size} ", 1)}</div></body></html>')
        page.screenshot(path=str(HERE / name), omit_background=True)
    browser.close()
print("wrote", *sorted(p.name for p in HERE.glob("*.png")))
