"""Every generated output, one module each, all of one shape: `files(project, layout) -> {path: content}`.

The plan (modelmon/plan.py) is their only input; the layout (modelmon/layout.py) says where each
file goes and which are written. modelmon/build.py runs them in turn, proves the result and writes it.
"""
