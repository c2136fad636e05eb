"""DescribeInstances pages by instance, as AWS does.

moto counts `MaxResults` of DescribeInstances in reservations, so a fleet
launched 500 instances per RunInstances call comes back in one page however
small `MaxResults` is; AWS counts instances (5 to 1000 per page) and splits a
reservation across pages when it must. The scheduler's benchmark over 5,000
instances measures memory per page, so it needs AWS's paging.

With this extension, a DescribeInstances call with `MaxResults` (and no
instance ids) returns at most that many instances, grouped in their
reservations (a reservation cut by a page boundary appears in both pages
with its part of the instances), and a `NextToken` of the form
`steward-page-<offset>` while more remain. Calls without `MaxResults`, with
instance ids, or with a token of moto's own keep moto's behaviour. Filters
apply as in moto (to the instances, before paging).

No test endpoints.
"""

import copy

TOKEN = "steward-page-"


def install():
    from moto.core.responses import ActionResult
    from moto.ec2.responses.instances import InstanceResponse

    original = InstanceResponse.describe_instances

    def describe_instances(self):
        token = self._get_param("NextToken")
        max_results = self._get_param("MaxResults")
        ours = token is None or str(token).startswith(TOKEN)
        if "InstanceId.1" in self.data or max_results is None or not ours:
            return original(self)
        self.error_on_dryrun()
        try:
            start = int(str(token)[len(TOKEN):]) if token else 0
        except ValueError:
            return original(self)
        max_results = int(max_results)
        filters = self._filters_from_querystring()
        reservations = self.ec2_backend.describe_instances(filters=filters)
        pairs = [(r, i) for r in reservations for i in r.instances]
        page = pairs[start : start + max_results]
        grouped = []
        for reservation, instance in page:
            if not grouped or grouped[-1][0] is not reservation:
                grouped.append((reservation, []))
            grouped[-1][1].append(instance)
        out = []
        for reservation, instances in grouped:
            part = copy.copy(reservation)
            part.instances = instances
            out.append(part)
        next_token = None
        if len(pairs) > start + max_results:
            next_token = f"{TOKEN}{start + max_results}"
        return ActionResult({"Reservations": out, "NextToken": next_token})

    InstanceResponse.describe_instances = describe_instances
