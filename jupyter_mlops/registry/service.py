"""Registry services: register a run's model as the next version of a named model, move
aliases, archive versions, load models by reference, and list models, versions and events.

Every alias move, description change and archive is an audit event (when, from which
version to which, who, and why). Version numbers are allocated inside one write
transaction, so concurrent registrations get distinct numbers.
"""

from __future__ import annotations

import getpass
import json
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..errors import ConflictError, MlopsError, NotFoundError, ValidationError
from ..store import Store, current_store, schema
from ..tracking.record import Run, get_run
from .card import model_card, model_card_html
from .references import ModelRef, check_alias, check_model_name, parse_model_ref

__all__ = [
    "ModelCard",
    "ModelVersion",
    "archive",
    "get_model_version",
    "load_model",
    "model_events",
    "model_versions",
    "models",
    "record_event",
    "register",
    "remove_alias",
    "set_alias",
    "set_description",
]


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


class ModelCard(str):
    """A model card: Markdown text (export it as is) that a notebook displays as a card at
    its own type sizes, long tables folded; Markdown-only front ends render the text."""

    html: str

    def __new__(cls, text: str, html: str = "") -> ModelCard:
        card = super().__new__(cls, text)
        card.html = html
        return card

    def _repr_html_(self) -> str | None:
        return self.html or None

    def _repr_markdown_(self) -> str:
        return str(self)


@dataclass
class ModelVersion:
    """One immutable version of a registered model (``ref`` is ``name@N``)."""

    name: str
    version: int
    run_id: str
    artifact: str
    object_hash: str
    format: str
    flavor: str | None
    signature: dict[str, Any]
    requirements: list[str]
    data: list[dict[str, Any]]
    metrics: dict[str, float]
    params: dict[str, Any]
    description: str | None
    archived: bool
    aliases: list[str]
    created: float
    created_by: str | None
    version_id: int
    _store: Store | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        """``name@N``."""
        return f"{self.name}@{self.version}"

    @property
    def run(self) -> Run:
        """The run that trained this version."""
        return get_run(self.run_id, self._store)

    def load(self, *, trusted: bool | list[str] = False) -> Any:
        """The model itself (hash-checked; see ``load_model`` for ``trusted``)."""
        from ..tracking.modelio import load_model_bytes

        data = (self._store or current_store()).objects.get(self.object_hash)
        return load_model_bytes(data, self.format, trusted=trusted)

    def card(self) -> ModelCard:
        """The model card as Markdown (a ``str``; it renders when displayed in a notebook)."""
        return ModelCard(model_card(self), model_card_html(self))

    def _repr_html_(self) -> str:
        from ..html import model_version_card

        return model_version_card(self)

    def __repr__(self) -> str:
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        state = " archived" if self.archived else ""
        return f"<ModelVersion {self.ref}{aliases}{state} from run {self.run_id[:8]}>"


def _model_id(conn: sa.Connection, name: str) -> int:
    found = conn.execute(
        sa.select(schema.models.c.model_id).where(schema.models.c.name == name)
    ).scalar()
    if found is None:
        import difflib

        names = list(conn.execute(sa.select(schema.models.c.name)).scalars())
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = (
            f" Did you mean: {', '.join(close)}?"
            if close
            else (
                f" Registered models: {', '.join(sorted(names)[:10])}."
                if names
                else " No model is registered yet."
            )
        )
        raise NotFoundError(f"No registered model {name!r}.{hint}")
    return int(found)


def _aliases(conn: sa.Connection, model_id: int) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for version_id, alias in conn.execute(
        sa.select(schema.model_aliases.c.version_id, schema.model_aliases.c.alias)
        .where(schema.model_aliases.c.model_id == model_id)
        .order_by(schema.model_aliases.c.alias)
    ):
        out.setdefault(version_id, []).append(alias)
    return out


def _from_row(row: Any, name: str, aliases: list[str], store: Store) -> ModelVersion:
    def load(text: str | None, default: Any) -> Any:
        return json.loads(text) if text else default

    return ModelVersion(
        name=name,
        version=row.version,
        run_id=row.run_id,
        artifact=row.artifact,
        object_hash=row.object_hash,
        format=row.format,
        flavor=row.flavor,
        signature=load(row.signature, {}),
        requirements=load(row.requirements, []),
        data=load(row.data, []),
        metrics=load(row.metrics, {}),
        params=load(row.params, {}),
        description=row.description,
        archived=bool(row.archived),
        aliases=aliases,
        created=row.created,
        created_by=row.created_by,
        version_id=row.version_id,
        _store=store,
    )


def _resolve(conn: sa.Connection, ref: ModelRef) -> Any:
    mv = schema.model_versions
    model_id = _model_id(conn, ref.name)
    query = sa.select(mv).where(mv.c.model_id == model_id)
    if ref.alias is not None:
        al = schema.model_aliases
        version_id = conn.execute(
            sa.select(al.c.version_id).where(al.c.model_id == model_id, al.c.alias == ref.alias)
        ).scalar()
        if version_id is None:
            known = list(
                conn.execute(sa.select(al.c.alias).where(al.c.model_id == model_id)).scalars()
            )
            raise NotFoundError(
                f"Model {ref.name!r} has no alias {ref.alias!r}; its aliases: "
                f"{', '.join(sorted(known)) or 'none'} (set one with mlops.set_alias)."
            )
        row = conn.execute(query.where(mv.c.version_id == version_id)).first()
    elif ref.version is not None:
        row = conn.execute(query.where(mv.c.version == ref.version)).first()
        if row is None:
            versions = list(
                conn.execute(
                    sa.select(mv.c.version).where(mv.c.model_id == model_id).order_by(mv.c.version)
                ).scalars()
            )
            raise NotFoundError(
                f"Model {ref.name!r} has no version {ref.version}; it has "
                f"{', '.join(map(str, versions)) or 'none'}."
            )
    else:
        row = conn.execute(
            query.where(mv.c.archived.is_(False)).order_by(mv.c.version.desc()).limit(1)
        ).first()
        if row is None:
            raise NotFoundError(f"Model {ref.name!r} has no versions that are not archived.")
    return model_id, row


def get_model_version(ref: str, store: Store | None = None) -> ModelVersion:
    """The version a reference names: ``churn@3``, ``churn@production``, ``churn@latest``."""
    store = store or current_store()
    parsed = parse_model_ref(ref)
    if not store.exists:
        raise NotFoundError(f"No registered model {parsed.name!r}: the store is empty.")
    with store.read() as conn:
        model_id, row = _resolve(conn, parsed)
        aliases = _aliases(conn, model_id).get(row.version_id, [])
    return _from_row(row, parsed.name, aliases, store)


def load_model(ref: str, *, trusted: bool | list[str] = False, store: Store | None = None) -> Any:
    """Load a registered model by reference; the artifact's hash is checked, and types that
    are not known to be safe (or a pickle) need ``trusted=True``."""
    return get_model_version(ref, store).load(trusted=trusted)


def _requirements(run: Run, model_class: str, requires: Any = ()) -> list[str]:
    """Pinned pip requirements: the model's package, the modules its flavor says it needs
    (``requires``: a Keras model's backend), its numeric stack and skops."""
    from ..tracking.environment import _module_to_dists

    packages = run.environment.get("packages", {}) if run.environment else {}
    wanted = {"scikit-learn", "numpy", "scipy", "skops"}
    roots = [model_class.split(".", 1)[0]]
    if isinstance(requires, list):
        roots += [str(r) for r in requires[:20]]
    try:
        dists = _module_to_dists()
        for root in roots:
            wanted |= set(dists.get(root, []))
    except Exception:
        pass
    lowered = {k.lower(): (k, v) for k, v in packages.items()}
    pins = []
    for dist in sorted(wanted, key=str.lower):
        found = lowered.get(dist.lower())
        if found is not None:
            pins.append(f"{found[0]}=={found[1]}")
    return pins


def _pick_model(run: Run, model: str | None) -> dict[str, Any]:
    candidates = run.models
    if not candidates:
        raise MlopsError(
            f"Run {run.run_id[:8]} ({run.name}) saved no model, so there is nothing to register. "
            "Fit an estimator in a %%track cell, or call mlops.log_model(model) in the run."
        )
    if model is None:
        if len(candidates) > 1:
            raise MlopsError(
                f"Run {run.run_id[:8]} saved several models: "
                f"{', '.join(m['name'] for m in candidates)}; pass model= to choose one."
            )
        return candidates[0]
    for found in candidates:
        if found["name"] == model:
            return found
    raise MlopsError(
        f"Run {run.run_id[:8]} has no model {model!r}; its models: "
        f"{', '.join(m['name'] for m in candidates)}."
    )


def register(
    run: Run | str,
    name: str,
    *,
    model: str | None = None,
    description: str | None = None,
    store: Store | None = None,
) -> ModelVersion:
    """Register a run's model as the next version of ``name`` (created on first use)."""
    from ..data.versions import refs_for

    store = store or current_store()
    check_model_name(name)
    record = run if isinstance(run, Run) else get_run(str(run), store)
    chosen = _pick_model(record, model)
    inputs = [i for i in record.inputs if i["role"] == "input"]
    refs = refs_for([i.get("data_version_id") for i in inputs], store)
    data = [
        {
            "name": i["name"],
            "ref": refs.get(i.get("data_version_id")),
            "content_hash": i["content_hash"],
            "shape": list(i["shape"]),
        }
        for i in inputs
    ]
    model_class = str(chosen.get("class", ""))
    values = {
        "run_id": record.run_id,
        "artifact": chosen["name"],
        "object_hash": chosen["object_hash"],
        "format": chosen["format"],
        "flavor": model_class,
        "signature": json.dumps(chosen.get("signature", {})),
        "requirements": json.dumps(_requirements(record, model_class, chosen.get("requires"))),
        "data": json.dumps(data),
        "metrics": json.dumps(record.metrics, default=str),
        "params": json.dumps(record.params, default=str),
        "description": description,
        "archived": False,
        "created_by": _user(),
    }
    m, mv = schema.models, schema.model_versions

    def work(conn: sa.Connection) -> int:
        model_id = conn.execute(sa.select(m.c.model_id).where(m.c.name == name)).scalar()
        if model_id is None:
            model_id = conn.execute(
                m.insert().values(name=name, description=None, created=time.time())
            ).inserted_primary_key[0]
        last = conn.execute(
            sa.select(sa.func.max(mv.c.version)).where(mv.c.model_id == model_id)
        ).scalar()
        version = int(last or 0) + 1
        now = time.time()
        conn.execute(mv.insert().values(model_id=model_id, version=version, created=now, **values))
        _event(conn, model_id, "registered", to_version=version, detail=f"from run {record.run_id}")
        return version

    version = store.write_retrying(work)
    return get_model_version(f"{name}@{version}", store)


def _event(
    conn: sa.Connection,
    model_id: int,
    kind: str,
    *,
    alias: str | None = None,
    from_version: int | None = None,
    to_version: int | None = None,
    detail: str | None = None,
    reason: str | None = None,
) -> None:
    conn.execute(
        schema.model_events.insert().values(
            model_id=model_id,
            kind=kind,
            alias=alias,
            from_version=from_version,
            to_version=to_version,
            detail=detail,
            user=_user(),
            reason=reason,
            time=time.time(),
        )
    )


def record_event(
    name: str,
    kind: str,
    *,
    detail: str | None = None,
    reason: str | None = None,
    version: int | None = None,
    store: Store | None = None,
) -> None:
    """Add an audit event to a model's history (retraining steps use it)."""
    store = store or current_store()

    def work(conn: sa.Connection) -> None:
        _event(conn, _model_id(conn, name), kind, to_version=version, detail=detail, reason=reason)

    store.write_retrying(work)


def set_alias(
    name: str,
    alias: str,
    version: int | str,
    *,
    reason: str | None = None,
    expected: int | object | None = ...,
    store: Store | None = None,
) -> ModelVersion:
    """Point ``name@alias`` at ``version`` (a number or a reference); an audit event records
    the move, who made it and ``reason``. With ``expected`` (a version number, or None for
    an alias not set yet), the move happens only if the alias still points there: a
    retraining job never overrides a promotion made while it ran."""
    store = store or current_store()
    check_model_name(name)
    check_alias(alias)
    if isinstance(version, str) and "@" in version:
        target = parse_model_ref(version)
    else:
        target = parse_model_ref(f"{name}@{version}")
    if target.name != name:
        raise ValidationError(f"Version {version!r} belongs to {target.name!r}, not {name!r}.")
    al = schema.model_aliases

    def work(conn: sa.Connection) -> None:
        model_id, row = _resolve(conn, target)
        if row.archived:
            raise ConflictError(
                f"{name}@{row.version} is archived; an alias cannot point at it. "
                "Choose another version."
            )
        current = conn.execute(
            sa.select(al.c.version_id).where(al.c.model_id == model_id, al.c.alias == alias)
        ).scalar()
        old = None
        if expected is not ...:
            now_at = (
                conn.execute(
                    sa.select(schema.model_versions.c.version).where(
                        schema.model_versions.c.version_id == current
                    )
                ).scalar()
                if current is not None
                else None
            )
            if now_at != expected:
                raise ConflictError(
                    f"{name}@{alias} moved to "
                    f"{'version ' + str(now_at) if now_at is not None else 'nothing'} "
                    f"(expected {expected}); it was left as it is."
                )
        if current is not None:
            if current == row.version_id:
                return
            old = conn.execute(
                sa.select(schema.model_versions.c.version).where(
                    schema.model_versions.c.version_id == current
                )
            ).scalar()
            conn.execute(al.delete().where(al.c.model_id == model_id, al.c.alias == alias))
        conn.execute(
            al.insert().values(
                model_id=model_id, alias=alias, version_id=row.version_id, updated=time.time()
            )
        )
        _event(
            conn,
            model_id,
            "alias_moved" if old is not None else "alias_set",
            alias=alias,
            from_version=old,
            to_version=row.version,
            reason=reason,
        )

    store.write_retrying(work)
    return get_model_version(f"{name}@{alias}", store)


def remove_alias(
    name: str, alias: str, *, reason: str | None = None, store: Store | None = None
) -> None:
    """Delete an alias (an audit event records it)."""
    store = store or current_store()
    check_model_name(name)
    al = schema.model_aliases

    def work(conn: sa.Connection) -> None:
        model_id, row = _resolve(conn, ModelRef(name, alias=alias))
        conn.execute(al.delete().where(al.c.model_id == model_id, al.c.alias == alias))
        _event(
            conn, model_id, "alias_removed", alias=alias, from_version=row.version, reason=reason
        )

    store.write_retrying(work)


def archive(ref: str, *, reason: str | None = None, store: Store | None = None) -> ModelVersion:
    """Hide a version from listings and ``@latest``; it stays loadable by number."""
    store = store or current_store()
    parsed = parse_model_ref(ref)
    if parsed.version is None:
        raise ValidationError(f"Archive a numbered version, such as {parsed.name}@3; got {ref!r}.")

    def work(conn: sa.Connection) -> None:
        model_id, row = _resolve(conn, parsed)
        aliases = _aliases(conn, model_id).get(row.version_id, [])
        if aliases:
            raise ConflictError(
                f"{parsed.name}@{row.version} is aliased as {', '.join(aliases)}; move "
                "those aliases to another version before archiving it."
            )
        if row.archived:
            return
        conn.execute(
            schema.model_versions.update()
            .where(schema.model_versions.c.version_id == row.version_id)
            .values(archived=True)
        )
        _event(conn, model_id, "archived", from_version=row.version, reason=reason)

    store.write_retrying(work)
    return get_model_version(f"{parsed.name}@{parsed.version}", store)


def set_description(
    ref: str, description: str, *, reason: str | None = None, store: Store | None = None
) -> ModelVersion | None:
    """Describe a model (``churn``) or one version (``churn@3``); recorded as an event."""
    store = store or current_store()
    parsed = parse_model_ref(ref)

    def work(conn: sa.Connection) -> None:
        if parsed.latest and "@" not in ref:
            model_id = _model_id(conn, parsed.name)
            conn.execute(
                schema.models.update()
                .where(schema.models.c.model_id == model_id)
                .values(description=description)
            )
            _event(conn, model_id, "description", detail=description, reason=reason)
            return
        model_id, row = _resolve(conn, parsed)
        conn.execute(
            schema.model_versions.update()
            .where(schema.model_versions.c.version_id == row.version_id)
            .values(description=description)
        )
        _event(
            conn, model_id, "description", to_version=row.version, detail=description, reason=reason
        )

    store.write_retrying(work)
    return None if "@" not in ref else get_model_version(ref, store)


def models(store: Store | None = None) -> Any:
    """One row per registered model: latest version, number of versions, aliases."""
    import pandas as pd

    store = store or current_store()
    columns = ["name", "latest_version", "versions", "aliases", "description", "created", "updated"]
    if not store.exists:
        return pd.DataFrame(columns=columns)
    m, mv, al = schema.models, schema.model_versions, schema.model_aliases
    with store.read() as conn:
        stats = conn.execute(
            sa.select(
                m.c.model_id,
                m.c.name,
                m.c.description,
                m.c.created,
                sa.func.max(mv.c.version),
                sa.func.count(mv.c.version_id),
                sa.func.max(mv.c.created),
            )
            .select_from(
                m.outerjoin(mv, sa.and_(mv.c.model_id == m.c.model_id, mv.c.archived.is_(False)))
            )
            .group_by(m.c.model_id, m.c.name, m.c.description, m.c.created)
            .order_by(m.c.name)
        ).all()
        alias_rows = conn.execute(
            sa.select(al.c.model_id, al.c.alias, mv.c.version).join(
                mv, mv.c.version_id == al.c.version_id
            )
        ).all()
    aliases: dict[int, dict[str, int]] = {}
    for model_id, alias, version in alias_rows:
        aliases.setdefault(model_id, {})[alias] = version
    frame = pd.DataFrame(
        [
            (name, latest, count, aliases.get(mid, {}), desc, created, updated or created)
            for mid, name, desc, created, latest, count, updated in stats
        ],
        columns=columns,
    )
    for column in ("created", "updated"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame


def model_versions(name: str, *, include_archived: bool = False, store: Store | None = None) -> Any:
    """A model's versions, newest first: aliases, run, data, metrics (``metrics.*``)."""
    import pandas as pd

    store = store or current_store()
    check_model_name(name)
    mv = schema.model_versions
    with store.read() as conn:
        model_id = _model_id(conn, name)
        query = sa.select(mv).where(mv.c.model_id == model_id).order_by(mv.c.version.desc())
        if not include_archived:
            query = query.where(mv.c.archived.is_(False))
        rows = conn.execute(query).all()
        aliases = _aliases(conn, model_id)
    records = []
    for row in rows:
        version = _from_row(row, name, aliases.get(row.version_id, []), store)
        record = {
            "version": version.version,
            "ref": version.ref,
            "aliases": version.aliases,
            "run_id": version.run_id,
            "data": [d.get("ref") or f"#{d['content_hash'][:12]}" for d in version.data],
            "archived": version.archived,
            "description": version.description,
            "created": version.created,
        }
        record.update({f"metrics.{k}": v for k, v in sorted(version.metrics.items())})
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    if not frame.empty:
        frame["created"] = pd.to_datetime(frame["created"], unit="s", utc=True)
    return frame


def model_events(name: str, store: Store | None = None) -> Any:
    """The audit trail of a model: registrations, alias moves, descriptions, archives."""
    import pandas as pd

    store = store or current_store()
    check_model_name(name)
    ev = schema.model_events
    with store.read() as conn:
        model_id = _model_id(conn, name)
        rows = conn.execute(
            sa.select(
                ev.c.time,
                ev.c.kind,
                ev.c.alias,
                ev.c.from_version,
                ev.c.to_version,
                ev.c.user,
                ev.c.reason,
                ev.c.detail,
            )
            .where(ev.c.model_id == model_id)
            .order_by(ev.c.time, ev.c.event_id)
        ).all()
    frame = pd.DataFrame(
        rows,
        columns=["time", "kind", "alias", "from_version", "to_version", "user", "reason", "detail"],
    )
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    for column in ("from_version", "to_version"):
        frame[column] = frame[column].astype("Int64")
    return frame
