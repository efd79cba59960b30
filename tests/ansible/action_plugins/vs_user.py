# vs_user: a test-only action that reports the user Ansible believes it
# talks to (the connection's remote_user, as the action plugins read it):
# remote_user, null when unknown.
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        result.update(remote_user=self._get_remote_user(), changed=False)
        return result
