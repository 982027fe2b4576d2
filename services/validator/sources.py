"""Where a result is read from: a published output folder, or the result API over HTTP.

Both give the same `Result` (plain frames + metadata). A file or field that is
missing or malformed is not an exception here: it is recorded in `problems` so
the integrity gate can fail it with a name, while the rest is still judged.
Only a result that cannot be reached at all raises `SourceError`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shared import storage

log = logging.getLogger(__name__)

ALERT_COLUMNS = ("alert_id", "score", "model_version")
RANK_COLUMNS = ("alert_id", "rank", "score", "model_version")
CLUSTER_COLUMNS = ("cluster_id", "score", "model_version")


class SourceError(RuntimeError):
    """A result could not be read at all (no such date, folder or server); the message says which."""


@dataclass
class Result:
    """One date's published result: alert scores, the ranking, cluster scores and metadata."""

    processing_date: str
    origin: str
    alerts: pd.DataFrame
    ranking: pd.DataFrame
    clusters: pd.DataFrame
    metadata: dict
    problems: list[str] = field(default_factory=list)


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def _as_ids(values: pd.Series) -> pd.Series:
    """Ids as Python strings (object dtype), missing ones as None."""
    missing = values.isna().to_numpy()
    ids = values.astype(str).to_numpy(dtype=object)
    ids[missing] = None
    return pd.Series(ids, index=values.index, dtype=object)


def normalise(frame: pd.DataFrame, columns: tuple[str, ...], name: str,
              problems: list[str]) -> pd.DataFrame:
    """Keep the judged columns (plus `address`), with ids as strings and scores as float64."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        problems.append(f"{name}: missing column(s) {', '.join(missing)}")
    keep = [c for c in (*columns, "address") if c in frame.columns]
    out = frame[keep].copy()
    for column in missing:
        out[column] = pd.Series([None] * len(out), dtype="object")
    for key in ("alert_id", "cluster_id", "address"):
        if key in out.columns:
            out[key] = _as_ids(out[key])
    for number in ("score", "rank"):
        if number in out.columns:
            out[number] = pd.to_numeric(out[number], errors="coerce").astype("float64")
    return out.reset_index(drop=True)


class FolderSource:
    """Results published under an output root (`{root}/{date}` symlinks into `.versions/`)."""

    def __init__(self, output_dir: Path):
        self.root = Path(output_dir)

    def __str__(self) -> str:
        return str(self.root)

    def dates(self) -> list[str]:
        """Published dates, newest first."""
        return storage.published_dates(self.root)

    def load(self, processing_date: str) -> Result:
        """Read one date; the symlink is resolved once so a concurrent publish cannot mix versions."""
        folder = storage.resolve(storage.date_dir(self.root, processing_date))
        if folder is None or not folder.is_dir():
            raise SourceError(f"{self.root / processing_date}: no published output for this date")
        problems: list[str] = []
        return Result(
            processing_date=processing_date,
            origin=str(folder),
            alerts=self._table(folder / storage.ALERTS_SCORED, ALERT_COLUMNS, problems),
            ranking=self._table(folder / storage.ALERTS_RANKED, RANK_COLUMNS, problems),
            clusters=self._table(folder / storage.CLUSTERS_SCORED, CLUSTER_COLUMNS, problems),
            metadata=self._metadata(folder / storage.METADATA, problems),
            problems=problems,
        )

    @staticmethod
    def _table(path: Path, columns: tuple[str, ...], problems: list[str]) -> pd.DataFrame:
        try:
            names = pq.read_schema(path).names
            wanted = [c for c in (*columns, "address") if c in names]
            frame = pq.read_table(path, columns=wanted).to_pandas()
        except FileNotFoundError:
            problems.append(f"{path.name}: file is missing")
            return _empty(columns)
        except (pa.ArrowException, OSError) as exc:
            problems.append(f"{path.name}: not a readable parquet file ({exc})")
            return _empty(columns)
        return normalise(frame, columns, path.name, problems)

    @staticmethod
    def _metadata(path: Path, problems: list[str]) -> dict:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            problems.append(f"{path.name}: file is missing")
            return {}
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"{path.name}: not valid JSON ({exc})")
            return {}
        if not isinstance(data, dict):
            problems.append(f"{path.name}: top level is not a JSON object")
            return {}
        return data


class ApiSource:
    """Results as the result API serves them (GET JSON endpoints)."""

    def __init__(self, base_url: str, timeout: float = 60.0, network: str | None = None):
        import requests  # only HTTP mode needs it

        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.network = network  # sent as ?network= when given (a stack of several networks)
        self.http = requests.Session()
        self._errors = (requests.RequestException, ValueError)

    def __str__(self) -> str:
        return self.base

    def _get(self, path: str) -> dict:
        url = f"{self.base}{path}"
        params = {"network": self.network} if self.network else None
        try:
            response = self.http.get(url, timeout=self.timeout, params=params)
        except self._errors as exc:
            raise SourceError(f"GET {url}: {exc}") from exc
        if response.status_code != 200:
            raise SourceError(f"GET {url}: HTTP {response.status_code} {response.text[:200]}")
        try:
            return response.json()
        except self._errors as exc:
            raise SourceError(f"GET {url}: response is not JSON ({exc})") from exc

    def dates(self) -> list[str]:
        """Dates the API serves, newest first."""
        body = self._get("/dates")
        dates = body.get("dates", body) if isinstance(body, dict) else body
        if not isinstance(dates, list):
            raise SourceError(f"GET {self.base}/dates: expected a list of dates, got {type(dates).__name__}")
        return sorted((str(d) for d in dates if storage.DATE_RE.match(str(d))), reverse=True)

    def load(self, processing_date: str) -> Result:
        """Fetch the four endpoints of one date."""
        storage.parse_date(processing_date)
        problems: list[str] = []
        alerts = self._frame(f"/scores/alerts/{processing_date}", "scores", ALERT_COLUMNS, problems)
        ranking = self._frame(f"/rankings/alerts/{processing_date}", "rankings", RANK_COLUMNS, problems)
        clusters = self._frame(f"/scores/clusters/{processing_date}", "scores", CLUSTER_COLUMNS,
                               problems)
        metadata = self._get(f"/metadata/{processing_date}")
        if not isinstance(metadata, dict):
            problems.append(f"/metadata/{processing_date}: top level is not a JSON object")
            metadata = {}
        return Result(processing_date, f"{self.base} ({processing_date})", alerts, ranking,
                      clusters, metadata, problems)

    def _frame(self, path: str, key: str, columns: tuple[str, ...], problems: list[str]) -> pd.DataFrame:
        body = self._get(path)
        rows = body.get(key) if isinstance(body, dict) else None
        if not isinstance(rows, list):
            problems.append(f"{path}: no {key!r} list in the response")
            return _empty(columns)
        frame = pd.DataFrame.from_records(rows) if rows else _empty(columns)
        if "model_version" in columns and "model_version" not in frame.columns:
            # The API states the version once per response, not per row.
            frame["model_version"] = body.get("model_version")
        return normalise(frame, columns, path, problems)


def previous_date(dates: list[str], processing_date: str) -> str | None:
    """The newest date strictly before processing_date, or None."""
    earlier = [d for d in dates if d < processing_date]
    return max(earlier) if earlier else None
