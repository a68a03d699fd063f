"""The market explorer: a read-only web app over the chain's events, the contracts' views and
the public documents on IPFS (docs/explorer.md). ``veritrain explorer`` starts it.

- :mod:`~veritrain.explorer.index`: the events, read in pages, and cached documents;
- :mod:`~veritrain.explorer.pages`: what each page shows (plain data);
- :mod:`~veritrain.explorer.charts`: the charts, as Chart.js configurations;
- :mod:`~veritrain.explorer.app`: the FastAPI app and its templates;
- :mod:`~veritrain.explorer.serve`: settings to a running server;
- :mod:`~veritrain.explorer.cli`: the command.
"""
