"""The miner serves from the API only: no models, no output folder, no parquet stack."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_miner_imports_no_model_or_data_library():
    code = ("import sys, services.miner.app, services.miner.cli; "
            "print(sorted(m for m in ('lightgbm', 'pandas', 'pyarrow', 'sklearn', 'boto3') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_miner_never_touches_the_output_folder_or_other_services():
    for source in (REPO / "services" / "miner").glob("*.py"):
        text = source.read_text()
        for forbidden in ("OUTPUT_DIR", "MODELS_DIR", "shared.storage", "shared.contract",
                          "services.api", "services.processor"):
            assert forbidden not in text, f"{source.name} mentions {forbidden}"
