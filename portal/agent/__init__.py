"""The reference enforcement agent: keeps an nftables set on a Linux gateway equal to the
portal's active exemptions, so that TCP port 25 is open exactly for the exempted sources.

It runs on the gateway, far from Django and the database: standard library only (no module
here may import Django), started as `python -m portal.agent`. See docs/enforcement.md.
"""

VERSION = "1.1.0"  # sent with each telemetry report
