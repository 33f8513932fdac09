"""``registry_view()`` / ``%mlops registry``: models, their versions, aliases and metrics;
per version the model card and lineage (run → data versions → the runs that made them);
and actions to set or move an alias and to archive, each confirmed and with a reason
recorded in the audit trail."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ..errors import MlopsError
from ..html import _STYLE, format_value
from ..registry import service
from ..store import Store, current_store
from .fallback import ShownEverywhere, live_style, new_token

__all__ = ["RegistryView", "registry_view"]

_SUGGESTED_ALIASES = ["production", "staging", "challenger"]


def _lineage(mv: service.ModelVersion, store: Store) -> list[tuple[str, str]]:
    """(what, detail) rows: the training run, its data versions, the runs that made them."""
    import sqlalchemy as sa

    from ..store import schema

    rows = [("training run", f"{mv.run_id[:8]} ({mv.run.name})")]
    refs = [d.get("ref") for d in mv.data if d.get("ref")]
    producers: dict[str, str | None] = {}
    if refs and store.exists:
        dv, ds = schema.data_versions, schema.datasets
        with store.read() as conn:
            for ref in refs:
                name, _, version = ref.rpartition("@v")
                producers[ref] = conn.execute(
                    sa.select(dv.c.run_id)
                    .join(ds, ds.c.dataset_id == dv.c.dataset_id)
                    .where(ds.c.name == name, dv.c.version == int(version))
                ).scalar()
    for item in mv.data:
        ref = item.get("ref") or f"#{item['content_hash'][:12]}"
        made_by = producers.get(item.get("ref") or "")
        detail = ref + (f" ← made by run {made_by[:8]}" if made_by else "")
        rows.append((f"data: {item['name']}", detail))
    return rows


def _table(rows: list[tuple[str, str]]) -> str:
    esc = html.escape
    return (
        "<table>"
        + "".join(f"<tr><td>{esc(a)}</td><td><code>{esc(b)}</code></td></tr>" for a, b in rows)
        + "</table>"
    )


class RegistryView(ShownEverywhere, widgets.VBox):
    """The registry panel. Readable state: ``model``, ``versions`` (DataFrame),
    ``selected`` (ModelVersion), ``pending`` (the action awaiting confirmation)."""

    def __init__(self, model: str | None = None, *, store: Store | None = None):
        self._store = store or current_store()
        self._token = new_token()
        names = list(service.models(self._store).name)
        if model is not None and model not in names:
            service.get_model_version(model, self._store)  # raises a clear NotFoundError
        self.pending: tuple[str, dict[str, Any]] | None = None
        self.model_select = widgets.Dropdown(
            options=names, value=model or (names[0] if names else None), description="Model"
        )
        self.show_archived = widgets.Checkbox(
            value=False, description="show archived", indent=False
        )
        self.versions_html = widgets.HTML()
        self.version_select = widgets.Dropdown(
            description="Version", layout=widgets.Layout(width="200px")
        )
        self.alias_box = widgets.Combobox(
            options=_SUGGESTED_ALIASES,
            placeholder="alias",
            description="Alias",
            layout=widgets.Layout(width="260px"),
        )
        self.reason_box = widgets.Text(
            placeholder="why (kept in the audit trail)",
            description="Reason",
            layout=widgets.Layout(width="420px"),
        )
        self.alias_button = widgets.Button(description="Set alias", icon="tag")
        self.archive_button = widgets.Button(description="Archive", icon="archive")
        self.confirm_text = widgets.HTML()
        self.confirm_button = widgets.Button(description="Confirm", button_style="warning")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_row = widgets.HBox(
            [self.confirm_text, self.confirm_button, self.cancel_button]
        )
        self.confirm_row.layout.display = "none"
        self.status = widgets.HTML()
        self.detail = widgets.HTML()
        self.model_select.observe(lambda _: self.refresh(), names="value")
        self.show_archived.observe(lambda _: self.refresh(), names="value")
        self.version_select.observe(lambda _: self._show_version(), names="value")
        self.alias_button.on_click(lambda _: self._ask("alias"))
        self.archive_button.on_click(lambda _: self._ask("archive"))
        self.confirm_button.on_click(lambda _: self._confirm())
        self.cancel_button.on_click(lambda _: self._cancel())
        super().__init__(
            [
                widgets.HBox([self.model_select, self.show_archived]),
                self.versions_html,
                widgets.HBox(
                    [self.version_select, self.alias_box, self.alias_button, self.archive_button]
                ),
                self.reason_box,
                self.confirm_row,
                self.status,
                self.detail,
                live_style(self._token),
            ]
        )
        self.refresh()

    @property
    def model(self) -> str | None:
        """The model shown."""
        return self.model_select.value

    @property
    def selected(self) -> service.ModelVersion | None:
        """The version the actions apply to."""
        if self.model is None or self.version_select.value is None:
            return None
        return service.get_model_version(f"{self.model}@{self.version_select.value}", self._store)

    def refresh(self) -> None:
        """Reload the versions of the chosen model."""
        if self.model is None:
            self.versions = None
            self.versions_html.value = (
                "<i>No model is registered yet: mlops.register(run, name).</i>"
            )
            return
        self.versions = service.model_versions(
            self.model, include_archived=self.show_archived.value, store=self._store
        )
        self.versions_html.value = (
            _STYLE + "<div class=mlops-card>" + self._versions_table() + "</div>"
        )
        options = list(self.versions.version) if not self.versions.empty else []
        current = self.version_select.value
        self.version_select.options = options
        self.version_select.value = (
            current if current in options else (options[0] if options else None)
        )
        self._show_version()

    def _versions_table(self) -> str:
        esc = html.escape
        frame = self.versions
        metrics = [c for c in frame.columns if c.startswith("metrics.")][:6]
        head = "".join(
            f"<th>{esc(c)}</th>"
            for c in ["version", "aliases", "run", "data", *[m[8:] for m in metrics], "created"]
        )
        body = ""
        for _, row in frame.iterrows():
            style = " style='color:#8c959f'" if row.archived else ""
            cells = [
                str(row.version) + (" (archived)" if row.archived else ""),
                ", ".join(row.aliases),
                row.run_id[:8],
                ", ".join(row.data),
                *[format_value(row[m]) for m in metrics],
                row.created.strftime("%Y-%m-%d %H:%M"),
            ]
            body += f"<tr{style}>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>"
        return f"<table><tr>{head}</tr>{body}</table>"

    def _show_version(self) -> None:
        mv = self.selected
        if mv is None:
            self.detail.value = ""
            return
        lineage = _table(_lineage(mv, self._store))
        card = html.escape(mv.card())
        self.detail.value = (
            mv._repr_html_()
            + f"<details><summary>lineage</summary>{lineage}</details>"
            + f"<details><summary>model card (Markdown)</summary><pre style='white-space:pre-wrap'>{card}</pre></details>"
        )

    # -- actions ----------------------------------------------------------------------------
    def _ask(self, action: str) -> None:
        mv = self.selected
        if mv is None:
            return
        esc = html.escape
        if action == "alias":
            alias = self.alias_box.value.strip()
            if not alias:
                self._error("Type an alias first (production, staging, …).")
                return
            try:
                now = service.get_model_version(f"{mv.name}@{alias}", self._store).version
                question = (
                    f"Move <b>{esc(alias)}</b> from {esc(mv.name)}@{now} to <b>{esc(mv.ref)}</b>?"
                )
            except MlopsError:
                question = f"Point the new alias <b>{esc(alias)}</b> at <b>{esc(mv.ref)}</b>?"
            self.pending = ("alias", {"alias": alias, "version": mv.version})
        else:
            question = f"Archive <b>{esc(mv.ref)}</b>? It stays loadable by number."
            self.pending = ("archive", {"version": mv.version})
        reason = self.reason_box.value.strip()
        self.confirm_text.value = question + (
            f" Reason: <i>{esc(reason)}</i>" if reason else " (no reason given)"
        )
        self.confirm_row.layout.display = "flex"
        self.status.value = ""

    def _confirm(self) -> None:
        if self.pending is None or self.model is None:
            return
        action, args = self.pending
        reason = self.reason_box.value.strip() or None
        self._cancel()
        try:
            if action == "alias":
                service.set_alias(
                    self.model, args["alias"], args["version"], reason=reason, store=self._store
                )
                done = f"{args['alias']} → {self.model}@{args['version']}"
            else:
                service.archive(f"{self.model}@{args['version']}", reason=reason, store=self._store)
                done = f"archived {self.model}@{args['version']}"
        except MlopsError as exc:
            self._error(str(exc))
            return
        self.reason_box.value = ""
        self.refresh()
        self.status.value = f"<span style='color:#1a7f37'>{html.escape(done)}</span>"

    def _cancel(self) -> None:
        self.pending = None
        self.confirm_row.layout.display = "none"
        self.confirm_text.value = ""

    def _error(self, message: str) -> None:
        self.status.value = (
            f"<pre style='color:#cf222e;white-space:pre-wrap'>{html.escape(message)}</pre>"
        )

    # -- static display -------------------------------------------------------------------
    def _repr_html_(self) -> str:
        """Every model with its versions, for saved notebooks where widgets do not run."""
        esc = html.escape
        parts = []
        for name in self.model_select.options:
            frame = service.model_versions(name, store=self._store)
            aliases = ", ".join(
                f"{a}→{v}" for v, al in zip(frame.version, frame.aliases, strict=True) for a in al
            )
            parts.append(f"<div><b>{esc(name)}</b> <span class=mut>{esc(aliases)}</span></div>")
        if self.versions is not None:
            parts.append(self._versions_table())
        return (
            _STYLE
            + "<div class=mlops-card><div class=hd><span class=nm>Model registry</span></div>"
            + "".join(parts)
            + "</div>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        return {**(bundle or {}), "text/html": self._repr_html_()}

    def __repr__(self) -> str:
        return f"<RegistryView {self.model or 'empty'}>"


def registry_view(model: str | None = None, *, store: Store | None = None) -> RegistryView:
    """The model registry panel: versions, aliases, card, lineage, alias and archive actions."""
    return RegistryView(model, store=store)
