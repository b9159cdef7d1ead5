"""Where the golden files live (banners and logs captured from real boards or byte-exact
models of them; each file's source is in docs/)."""

from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
