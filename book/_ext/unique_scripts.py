"""Sphinx extension: each page lists each script once.

Sphinx 7.4 adds the inline scripts that an extension registers after the builder started (sphinx-thebe's
`const THEBE_JS_URL = ...`) a second time on every page, so the browser stops at the second `const` with
"Identifier 'THEBE_JS_URL' has already been declared". This drops the repeats from the page's script list.
"""


def _key(script):
    return (script.filename or None, script.priority, tuple(sorted(script.attributes.items())))


def unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        if _key(script) not in seen:
            seen.add(_key(script))
            kept.append(script)
    scripts[:] = kept  # in place: the builder restores its own list after each page


def setup(app):
    app.connect("html-page-context", unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
