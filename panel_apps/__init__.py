"""The Pystrument dashboard: a multi-page Panel app over ``pystrument_lab``.

One module per page (``overview``, ``projects``, ``endpoints``, ``records``,
``trace``, ``versions``, ``analysis``, ``reports``), the shared session state
in ``state``, the assembly in ``app`` and the ``pystrument dashboard`` command
in ``cli``. Every number shown comes from a ``pystrument_lab`` function.

Serve it with ``pystrument dashboard`` (or ``panel serve panel_apps/app.py``).
"""
