"""The app's two palettes, one per meaning, used by the charts (dashboard.charts) and the
admin's badges; static/flakyboard/app.css declares the same values as custom properties
(--healthy, --flaky, --broken, --band-high, ...), and tests/dashboard/test_static.py
checks that they agree.

- status: HEALTHY / FLAKY / BROKEN. Dark enough for white badge text (WCAG AA, >= 4.5:1).
- confidence bands: a blue sequential scale (darker = more confident), never a status
  colour: a low-confidence investigation is not a broken test. The light "low" step
  takes dark text (BAND_TEXT).
"""

STATUS_COLORS = {"HEALTHY": "#237a35", "FLAKY": "#b35900", "BROKEN": "#c92a2a"}
BAND_COLORS = {"high": "#1e3a8a", "medium": "#3d5fc4", "low": "#c5d2f6"}
BAND_TEXT = {"high": "#ffffff", "medium": "#ffffff", "low": "#1d2330"}
