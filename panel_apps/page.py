"""The base of every page: its state, when it reloads, how it shows progress and errors."""

from __future__ import annotations

from typing import Any, ClassVar

import panel as pn

from panel_apps.state import AppState
from pystrument_lab.errors import PystrumentError
from pystrument_lab.markup import markdown_text


class Page(pn.viewable.Viewer):
    """A dashboard page.

    ``refresh()`` reloads the page's data; it runs when one of the state
    parameters in ``depends_on`` changes while the page is shown, and when
    the page is shown after such a change (pages hidden meanwhile do no work).
    """

    slug: ClassVar[str] = ""
    depends_on: ClassVar[tuple[str, ...]] = ("project", "time_range")

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self.message = pn.pane.Alert(
            visible=False, alert_type="warning", sizing_mode="stretch_width"
        )
        self.body = pn.Column(sizing_mode="stretch_width")
        self._stale = True
        self._watcher = self.state.param.watch(self._state_changed, list(self.depends_on))

    @property
    def lab(self) -> Any:
        return self.state.lab

    @property
    def active(self) -> bool:
        return bool(self.state.page == self.slug)

    def _state_changed(self, *_: Any) -> None:
        if self.active:
            self.refresh()
        else:
            self._stale = True

    def activate(self) -> None:
        """Called when the page becomes the visible one."""
        if self._stale:
            self.refresh()

    def refresh(self) -> None:
        """Reload; in a served session the spinner reaches the browser before the work starts."""
        self._stale = False
        self.message.visible = False
        self.body.loading = True
        # schedule=True: run on the next tick, after this callback's changes (the spinner) are sent.
        pn.state.execute(self._reload, schedule=True)

    def _reload(self) -> None:
        try:
            self.update()
        except PystrumentError as exc:
            self.warn(exc.message)
        finally:
            self.body.loading = False

    def update(self) -> None:
        """Load the data and fill the page's components."""

    def warn(self, text: str, alert_type: str = "warning") -> None:
        """Show ``text`` literally (it often quotes a route, a name or an error)."""
        self.message.param.update(object=markdown_text(text), alert_type=alert_type, visible=True)

    def need_project(self) -> str | None:
        """The chosen project, or None after saying how to choose one."""
        if not self.state.project:
            self.warn(
                "Choose a project in the sidebar (or create one on the Projects page).", "info"
            )
            return None
        return str(self.state.project)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.message, self.body, sizing_mode="stretch_width")
