"""Dashboard pages, one module per page family.

Thin views: parse the query string with a form (dashboard.forms), call dashboard.selectors,
build figures with dashboard.charts, render. An htmx request gets only the named partial
of the same template (`template_name + "#<partial>"`); the partial's name, the element
id and `hx-target` are the same word.
"""
