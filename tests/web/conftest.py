from tests.browser import browser, dashboard, page  # noqa: F401  (fixtures)
