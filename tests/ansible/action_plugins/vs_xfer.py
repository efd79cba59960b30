# vs_xfer: a test-only action that calls the connection's put_file or
# fetch_file directly and reports the exception it raised, if any, by
# class name (exc) and message (msg).  Ansible's own modules wrap both in
# steps of their own; this looks at the connection alone.
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        try:
            if args['mode'] == 'put':
                self._connection.put_file(args['src'], args['dest'])
            else:
                self._connection.fetch_file(args['src'], args['dest'])
            result.update(exc='', msg='')
        except AnsibleError as e:
            result.update(exc=type(e).__name__, msg=str(e))
        result['changed'] = False
        return result
