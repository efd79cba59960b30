# vs_tap: a stdout callback for the Ansible stage of tests/run.  Prints
# "ok - PLAY: CHECK" for every passing task named "check: CHECK", "skip -"
# for a skipped one, and "not ok -" (with the message) for a failing check
# and for any other task that fails or finds its host unreachable without
# being told to ignore it.  Everything else stays quiet.
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = '''
    name: vs_tap
    type: stdout
    short_description: ok/not ok lines for the vsock-shell tests
    description: One line per check task, and one per unexpected failure.
'''

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'vs_tap'

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.play = ''

    def _say(self, line):
        self._display.display(line)

    def _name(self, result):
        return result._task.get_name().strip()

    def _check(self, result):
        name = self._name(result)
        return name[len('check:'):].strip() if name.startswith('check:') else None

    def _why(self, result):
        r = result._result
        msg = r.get('msg') or r.get('stderr') or r.get('module_stderr') or ''
        msg = ' '.join(str(msg).split())
        return msg[:400]

    def v2_playbook_on_play_start(self, play):
        self.play = play.get_name().strip()

    def v2_runner_on_ok(self, result):
        c = self._check(result)
        if c is not None:
            self._say('ok - %s: %s' % (self.play, c))

    def v2_runner_on_skipped(self, result):
        c = self._check(result)
        if c is not None:
            self._say('skip - %s: %s' % (self.play, c))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        c = self._check(result)
        if c is not None:
            self._say('not ok - %s: %s: %s' % (self.play, c, self._why(result)))
        elif not ignore_errors:
            self._say('not ok - %s: task "%s" failed on %s: %s'
                      % (self.play, self._name(result), result._host.get_name(), self._why(result)))

    def v2_runner_on_unreachable(self, result):
        if result._task.ignore_unreachable:
            return
        self._say('not ok - %s: task "%s": %s unreachable: %s'
                  % (self.play, self._name(result), result._host.get_name(), self._why(result)))

    def v2_playbook_on_no_hosts_matched(self):
        self._say('not ok - %s: no hosts matched' % self.play)
