"""Stage 3, render: a notification becomes Discord's message, fitted so Discord never refuses
it and no log line can ping anyone.

Pure (no I/O, no clocks of its own); called on the worker thread. ``templating`` runs the
Jinja2 sandbox, ``text`` cleans and cuts text, ``message_limits`` holds Discord's size limits,
``storm_summary`` describes a storm, ``packing`` puts notifications into one message (up to 10
embeds, or a digest), ``payload`` builds the JSON body.
"""
