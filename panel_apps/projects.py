"""Projects: create one (its key and SDK snippets are shown), edit its settings, archive it."""

from __future__ import annotations

from typing import Any, ClassVar

import panel as pn

from panel_apps.page import Page
from panel_apps.snippets import snippet_tabs
from panel_apps.state import AppState
from panel_apps.tables import table, update_table
from pystrument_lab.errors import PystrumentError
from pystrument_lab.markup import markdown_text
from pystrument_lab.store import FRAMEWORKS

PROJECT_TABLE_COLUMNS = [
    "name",
    "framework",
    "status",
    "sampling_rate",
    "enabled",
    "auto_analysis",
    "last_activity",
]


class ProjectsPage(Page):
    slug: ClassVar[str] = "projects"
    depends_on: ClassVar[tuple[str, ...]] = ("project",)

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(state, **params)
        self.new_name = pn.widgets.TextInput(label="Name", placeholder="shop-api")
        self.new_framework = pn.widgets.Select(
            label="Framework", options=list(FRAMEWORKS), value="flask"
        )
        self.new_rate = pn.widgets.FloatSlider(
            label="Sampling rate", start=0.0, end=1.0, step=0.05, value=0.3
        )
        self.create_button = pn.widgets.Button(label="Create project", color="primary")
        self.create_button.on_click(self._clicked)
        self.created = pn.Column(sizing_mode="stretch_width")

        self.sampling_rate = pn.widgets.FloatSlider(
            label="Sampling rate", start=0.0, end=1.0, step=0.05
        )
        self.enabled = pn.widgets.Checkbox(label="Enabled (the SDK sends data)")
        self.auto_analysis = pn.widgets.Checkbox(label="Analyse slow requests automatically")
        self.response_time = pn.widgets.FloatInput(
            label="Alert: p95 above (s)", start=0.0, step=0.1
        )
        self.error_rate = pn.widgets.FloatInput(
            label="Alert: error rate above (0-1)", start=0.0, end=1.0, step=0.01
        )
        self.memory = pn.widgets.FloatInput(label="Alert: memory above (MB)", start=0.0, step=16.0)
        self.save_button = pn.widgets.Button(label="Save settings", color="primary")
        self.save_button.on_click(self._clicked)
        self.archive_button = pn.widgets.Button(label="Archive project", color="danger")
        self.archive_button.on_click(self._clicked)
        self.editor = pn.Column(sizing_mode="stretch_width")
        self.listing = table(
            self.lab.projects(), PROJECT_TABLE_COLUMNS, pagination="local", page_size=10
        )
        self.listing.on_click(self._listing_clicked)

    # -- actions ------------------------------------------------------------

    def _clicked(self, event: Any) -> None:
        actions = {
            self.create_button: self.create,
            self.save_button: self.save,
            self.archive_button: self.archive,
        }
        actions[event.obj]()

    def create(self) -> dict[str, Any] | None:
        # The answer to this click replaces the previous one (an earlier "Created" included).
        self.created.objects = []
        name = (self.new_name.value or "").strip()
        if not name:
            self.warn("Give the project a name.")
            return None
        try:
            project = self.lab.store.create_project(
                name, framework=self.new_framework.value, sampling_rate=self.new_rate.value
            )
        except PystrumentError as exc:
            self.warn(exc.message)
            return None
        self.message.visible = False
        self.created.objects = [
            pn.pane.Alert(
                f"Created **{markdown_text(project['name'])}**. Its project key (the SDK sends it with every batch):",
                alert_type="success",
            ),
            pn.widgets.TextInput(
                value=project["project_key"],
                label="Project key",
                css_classes=["project-key"],
                width=460,
            ),
            snippet_tabs(
                project["project_key"],
                framework=project["framework"],
                sampling_rate=project["config"]["sampling_rate"],
            ),
        ]
        self.new_name.value = ""
        self.state.project = project["name"]  # the page reloads with the new project chosen
        return project

    def save(self) -> dict[str, Any] | None:
        project = self._project()
        if project is None:
            return None
        changes = {
            "config.sampling_rate": self.sampling_rate.value,
            "config.enabled": self.enabled.value,
            "config.auto_analysis": self.auto_analysis.value,
            "config.alert_threshold.response_time": self.response_time.value,
            "config.alert_threshold.error_rate": self.error_rate.value,
            "config.alert_threshold.memory_usage": self.memory.value,
        }
        updated = self.lab.store.update_project(project["project_key"], changes)
        self.warn(f"Saved the settings of {updated['name']}.", "success")
        self._refresh_listing()
        return updated

    def archive(self) -> dict[str, Any] | None:
        project = self._project()
        if project is None:
            return None
        updated = self.lab.store.update_project(
            project["project_key"], {"status": "archived", "config.enabled": False}
        )
        self.warn(
            f"Archived {updated['name']}: the SDK stops sending; its data stays until retention removes it.",
            "info",
        )
        self._refresh_listing()
        self._fill_editor(updated)
        return updated

    # -- view ---------------------------------------------------------------

    def _project(self) -> dict[str, Any] | None:
        if not self.state.project:
            return None
        return self.lab.store.project_by_name(self.state.project) or self.lab.store.find_project(
            self.state.project
        )

    def _listing_clicked(self, event: Any) -> None:
        self.state.project = str(self.listing.value.iloc[event.row]["name"])

    def _refresh_listing(self) -> None:
        update_table(self.listing, self.lab.projects(), PROJECT_TABLE_COLUMNS)

    def update(self) -> None:
        self._refresh_listing()
        project = self._project()
        if project is None:
            self.editor.objects = [pn.pane.Markdown("Pick a project in the list to edit it.")]
        else:
            self._fill_editor(project)
        create_form = pn.Card(
            pn.Row(self.new_name, self.new_framework, self.new_rate),
            self.create_button,
            self.created,
            title="New project",
            collapsible=False,
            sizing_mode="stretch_width",
        )
        self.body.objects = [
            pn.pane.Markdown("## Projects"),
            self.listing,
            create_form,
            self.editor,
        ]

    def _fill_editor(self, project: dict[str, Any]) -> None:
        config = project.get("config") or {}
        limits = config.get("alert_threshold") or {}
        self.sampling_rate.value = float(config.get("sampling_rate", 0.3))
        self.enabled.value = bool(config.get("enabled", True))
        self.auto_analysis.value = bool(config.get("auto_analysis", False))
        self.response_time.value = float(limits.get("response_time", 1.0))
        self.error_rate.value = float(limits.get("error_rate", 0.05))
        self.memory.value = float(limits.get("memory_usage", 512.0))
        status = project.get("status", "active")
        self.editor.objects = [
            pn.pane.Markdown(
                f"### {markdown_text(project['name'])} "
                f"({markdown_text(project.get('framework'))}, {markdown_text(status)})"
            ),
            pn.widgets.TextInput(
                value=project["project_key"],
                label="Project key",
                css_classes=["project-key"],
                width=460,
            ),
            pn.Row(
                pn.Column(self.sampling_rate, self.enabled, self.auto_analysis),
                pn.Column(self.response_time, self.error_rate, self.memory),
            ),
            pn.Row(self.save_button, self.archive_button),
            pn.pane.Markdown("#### Add the SDK"),
            snippet_tabs(
                project["project_key"],
                framework=project.get("framework") or "flask",
                sampling_rate=self.sampling_rate.value,
            ),
        ]
