"""The AWS API emulator (moto's server) as rafter's tests run it, with the emulator's own bugs
that would fail a correct client mended before it starts. Its differences from AWS's
behaviour (consistency, propagation, refusals) are played by the tests' fault proxy
(tests/common/proxy.rs), not here.

Mended:
- A launch template version made by CreateLaunchTemplateVersion keeps its UserData as the
  plain string it was sent, which the emulator's own launches then refuse (an assertion, so
  an auto-scaling group launching from that version answers HTTP 500). CreateLaunchTemplate
  parses it; so does this, on first use.

Usage: python scripts/moto-server.py [moto_server's arguments]
"""

import sys

from moto.core.types import Base64EncodedString
from moto.ec2.models import launch_templates
from moto.ec2.utils import parse_user_data

_stored_user_data = launch_templates.LaunchTemplateVersion.user_data


def _parsed_user_data(version):
    value = version.data.get("UserData")
    if value is not None and not isinstance(value, Base64EncodedString):
        version.data["UserData"] = parse_user_data(value)
    return _stored_user_data.fget(version)


launch_templates.LaunchTemplateVersion.user_data = property(_parsed_user_data)

from moto.server import main  # noqa: E402  (after the mends, which it must see)

if __name__ == "__main__":
    sys.exit(main())
