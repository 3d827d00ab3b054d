"""The example project's demo: a research-report pipeline and the commands that run it.

It lives beside the reusable app, not inside it, so a host project that installs
dagstream gets no demo user, demo commands or demo runs.
"""
