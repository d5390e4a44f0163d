"""The AWS API emulator (moto's server) as rafter's tests run it, with the emulator's own bugs
that would fail a correct client mended before it starts. Its differences from AWS's
behaviour (consistency, propagation, refusals) are played by the tests' fault proxy
(tests/common/proxy.rs), not here.

Mended:
- A launch template version made by CreateLaunchTemplateVersion keeps its UserData as the
  plain string it was sent, which the emulator's own launches then refuse (an assertion, so
  an auto-scaling group launching from that version answers HTTP 500). CreateLaunchTemplate
  parses it; so does this, on first use.
- DescribeLaunchTemplates cuts its answer at MaxResults (15 when not given) and returns no
  NextToken, so a client that pages as AWS documents it sees only the first 15 templates
  (a cluster of many node groups found its own templates "deleted"). AWS pages: MaxResults
  5-1000 per call, the rest behind NextToken
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeLaunchTemplates.html).
  This pages the same way.
- CreateLaunchTemplateVersion ignores SourceVersion: the new version holds only the data
  sent, where AWS starts from the source version's data and overrides what is sent
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplateVersion.html).
  A version made by hand from the console's "modify template" would otherwise lose its
  image, key and network settings. This inherits as AWS does.

Usage: python scripts/moto-server.py [moto_server's arguments]
"""

import copy
import sys

from moto.core.responses import ActionResult
from moto.core.types import Base64EncodedString
from moto.ec2.models import launch_templates
from moto.ec2.responses.launch_templates import LaunchTemplates as LaunchTemplateResponses
from moto.ec2.utils import parse_user_data

_stored_user_data = launch_templates.LaunchTemplateVersion.user_data


def _parsed_user_data(version):
    value = version.data.get("UserData")
    if value is not None and not isinstance(value, Base64EncodedString):
        version.data["UserData"] = parse_user_data(value)
    return _stored_user_data.fget(version)


launch_templates.LaunchTemplateVersion.user_data = property(_parsed_user_data)


def _paged_launch_templates(self):
    max_results = self._get_int_param("MaxResults", 1000)
    start = int(self._get_param("NextToken") or 0)
    self.error_on_dryrun()
    templates = self.ec2_backend.describe_launch_templates(
        template_names=self._get_param("LaunchTemplateNames", []),
        template_ids=self._get_param("LaunchTemplateIds", []),
        filters=self._filters_from_querystring(),
    )
    page = templates[start : start + max_results]
    result = {
        "LaunchTemplates": [
            {
                "CreateTime": template.create_time,
                "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                "DefaultVersionNumber": template.default_version_number,
                "LatestVersionNumber": template.latest_version_number,
                "LaunchTemplateId": template.id,
                "LaunchTemplateName": template.name,
                "Tags": template.tags,
            }
            for template in page
        ]
    }
    if start + max_results < len(templates):
        result["NextToken"] = str(start + max_results)
    return ActionResult(result)


LaunchTemplateResponses.describe_launch_templates = _paged_launch_templates

_create_version = LaunchTemplateResponses.create_launch_template_version


def _create_version_from_source(self):
    source = self._get_param("SourceVersion")
    if source is not None:
        template_id = self._get_param("LaunchTemplateId")
        template = (
            self.ec2_backend.get_launch_template(template_id)
            if template_id
            else self.ec2_backend.get_launch_template_by_name(
                self._get_param("LaunchTemplateName")
            )
        )
        inherited = copy.deepcopy(template.get_version(source).data)
        inherited.update(self._get_param("LaunchTemplateData", {}))
        get_param = self._get_param

        def _with_inherited(key, *args, **kwargs):
            if key == "LaunchTemplateData":
                return inherited
            return get_param(key, *args, **kwargs)

        self._get_param = _with_inherited
    return _create_version(self)


LaunchTemplateResponses.create_launch_template_version = _create_version_from_source

from moto.server import main  # noqa: E402  (after the mends, which it must see)

if __name__ == "__main__":
    sys.exit(main())
