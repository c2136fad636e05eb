"""EC2 network interfaces: read back exactly the groups that were set.

moto 5.2.5 answers `DescribeNetworkInterfaces` for an attached interface with
the interface's own groups *plus* the instance's launch groups
(`NetworkInterface.group_set` unions them). So after
`ModifyNetworkInterfaceAttribute` sets only a quarantine group, the launch
group is still listed beside it, and code that decides "isolated" from the
interface's groups can never see an isolated interface. AWS lists exactly
the groups the interface has: the groups it was created (or launched) with,
until a modify call replaces them.

This extension makes `group_set` return the interface's own groups. The
instance's launch groups are used only for an interface that has none of its
own (moto gives a launched instance's primary interface the launch groups
already, so this fallback is for odd moto-internal paths only).
"""

from moto.ec2.models import elastic_network_interfaces as eni_models


def _own_groups(self):
    if self._group_set:
        return self._group_set
    if self.instance and self.instance.security_groups:
        return list(self.instance.security_groups)
    return self._group_set


def install():
    eni_models.NetworkInterface.group_set = property(_own_groups)
