"""The AWS API emulator (moto's server) as rafter's tests run it, with the emulator's own bugs
that would fail a correct client mended before it starts. Its differences from AWS's
behaviour (consistency, propagation, refusals) are played by the tests' fault proxy
(tests/common/proxy.rs), except where AWS keeps state the emulator must hold (an instance
waiting at a lifecycle hook), which is taught here.

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

Taught (AWS behaviour the emulator lacks, which rafter must cope with):
- A terminating lifecycle hook holds an instance. TerminateInstanceInAutoScalingGroup on a
  group with an `autoscaling:EC2_INSTANCE_TERMINATING` hook puts the instance in
  `Terminating:Wait` (still running, no longer in service) until CompleteLifecycleAction or
  the hook's heartbeat timeout, when its default result applies; only then is it terminated
  and replaced. The emulator terminated it at once and has no CompleteLifecycleAction. An
  action completed for an instance not waiting is refused with AWS's text
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html,
  https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CompleteLifecycleAction.html).

Usage: python scripts/moto-server.py [moto_server's arguments]
"""

import copy
import sys
import threading

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

from moto.autoscaling import models as autoscaling_models  # noqa: E402
from moto.autoscaling.exceptions import ValidationError  # noqa: E402
from moto.autoscaling.responses import AutoScalingResponse  # noqa: E402
from moto.core.responses import EmptyResult  # noqa: E402

_TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
_terminate_now = autoscaling_models.AutoScalingBackend.terminate_instance
# Instances held by a terminating hook: instance id -> (group, hook names, decrement).
_held = {}
_held_lock = threading.Lock()


def _instance_state(backend, instance_id):
    for group in backend.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id:
                return group, state
    return None, None


def _release(backend, instance_id):
    with _held_lock:
        held = _held.pop(instance_id, None)
    if held is None:
        return False
    _, state = _instance_state(backend, instance_id)
    if state is not None:
        state.lifecycle_state = "Terminating:Proceed"
        _terminate_now(backend, instance_id, held[2])
    return True


def _terminate_with_hooks(self, instance_id, should_decrement):
    group, state = _instance_state(self, instance_id)
    hooks = [
        hook
        for hook in self.lifecycle_hooks.values()
        if group is not None
        and hook.auto_scaling_group_name == group.name
        and hook.lifecycle_transition == _TERMINATING
    ]
    with _held_lock:
        already = instance_id in _held
    if not hooks or already:
        if already:
            return autoscaling_models.TerminateInstanceActivity(
                state.instance, group.desired_capacity
            )
        return _terminate_now(self, instance_id, should_decrement)
    state.lifecycle_state = "Terminating:Wait"
    with _held_lock:
        _held[instance_id] = (group.name, {hook.name for hook in hooks}, should_decrement)
    timeout = min(hook.heartbeat_timeout for hook in hooks)
    timer = threading.Timer(timeout, _release, args=(self, instance_id))
    timer.daemon = True
    timer.start()
    return autoscaling_models.TerminateInstanceActivity(state.instance, group.desired_capacity)


autoscaling_models.AutoScalingBackend.terminate_instance = _terminate_with_hooks


def _complete_lifecycle_action(self):
    instance_id = self._get_param("InstanceId")
    group_name = self._get_param("AutoScalingGroupName")
    hook_name = self._get_param("LifecycleHookName")
    with _held_lock:
        held = _held.get(instance_id)
    if held is None or held[0] != group_name or hook_name not in held[1]:
        raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")
    _release(self.autoscaling_backend, instance_id)
    return EmptyResult()


AutoScalingResponse.complete_lifecycle_action = _complete_lifecycle_action

from moto.server import main  # noqa: E402  (after the mends, which it must see)

if __name__ == "__main__":
    sys.exit(main())
