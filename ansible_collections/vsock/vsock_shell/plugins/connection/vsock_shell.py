# vsock_shell: an Ansible connection to a VM's vsock-agent, through the
# vsock-shell binary.  Part of the vsock-shell project.

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
    name: vsock_shell
    short_description: run tasks in a VM over AF_VSOCK with vsock-shell
    description:
        - Runs commands and moves files in a virtual machine through its
          C(vsock-agent), with the C(vsock-shell) binary on the controller;
          no network, no SSH server and no qemu-ga in the guest.
        - Each command is one C(vsock-shell TARGET -- CMD) session. Its stdin
          is streamed (pipelining has no size limit), stdout and stderr stay
          separate and the exit status passes through.  Files move with
          C(vsock-shell cp), which verifies every file end to end and
          renames it into place only once it arrived whole.
        - The agent runs commands as its own user (root in an initramfs or
          as a system service), which C(remote_user) cannot change; use
          become.  A remote user asked for the usual ways (C(-u),
          C(remote_user), C(ansible_user)) is ignored with a warning.
    author: vsock-shell project
    version_added: 0.1.0
    extends_documentation_fragment:
        - connection_pipelining
    notes:
        - Exit status 255 is read as a connection failure (the host is
          unreachable) only when the last lines on stderr are vsock-shell's
          own messages, which begin with its name; a command that itself
          exits 255 keeps its status.
        - Become passwords are answered on the session's stdin, as C(sudo -S)
          (Ansible's sudo plugin) expects.  There is no terminal, so a become
          method that reads its password only from a terminal (C(su) on most
          systems) works only where it asks for none, as from root.
        - A guest without Python runs M(ansible.builtin.raw) and
          M(ansible.builtin.script) tasks; turn fact gathering off there
          (C(gather_facts=false)).
    options:
      host:
        description:
          - The vsock-shell target, passed as is.  C(CID) or C(CID:PORT) or
            C(vsock:CID:PORT) (AF_VSOCK), C(unix:PATH) (a Unix socket, for an
            agent listening on it or the host side of a Firecracker or
            cloud-hypervisor socket), C(hybrid:PATH:PORT)
            (Firecracker/cloud-hypervisor host-initiated), or C(@NAME) (a
            guest known to the host's hub, see C(hub)).
        default: inventory_hostname
        type: string
        vars:
          - name: inventory_hostname
          - name: ansible_host
          - name: ansible_vsock_shell_host
          - name: delegated_vars['ansible_host']
      port:
        description:
          - The vsock port (C(-p), for commands and copies alike) where the
            target names none.  A port in the target wins.  vsock-shell's
            default is 1024.
        type: integer
        vars:
          - name: ansible_port
          - name: ansible_vsock_shell_port
        env:
          - name: ANSIBLE_VSOCK_SHELL_PORT
        ini:
          - section: vsock_shell_connection
            key: port
      vsock_shell_path:
        description:
          - The vsock-shell binary, as a path or a name looked up in C(PATH).
        default: vsock-shell
        type: string
        vars:
          - name: ansible_vsock_shell_path
        env:
          - name: ANSIBLE_VSOCK_SHELL_PATH
        ini:
          - section: vsock_shell_connection
            key: path
      hub:
        description:
          - The hub's Unix socket (C(vsock-shell serve)), for C(@NAME)
            targets, passed as C(--hub PATH), and only for such targets.
          - Unset, vsock-shell chooses (its own C(VSOCK_SHELL_HUB) or its
            default).
        type: string
        vars:
          - name: ansible_vsock_shell_hub
        env:
          - name: VSOCK_SHELL_HUB
          - name: ANSIBLE_VSOCK_SHELL_HUB
        ini:
          - section: vsock_shell_connection
            key: hub
      key_file:
        description:
          - A file with the key shared with the agent, passed as
            C(--key FILE) when set (never otherwise).
        type: path
        vars:
          - name: ansible_vsock_shell_key_file
        env:
          - name: ANSIBLE_VSOCK_SHELL_KEY_FILE
        ini:
          - section: vsock_shell_connection
            key: key_file
      wait:
        description:
          - Seconds to wait for the agent (C(-w)), retrying with backoff while
            the guest boots.  Unset or C(0), one attempt.
        type: integer
        vars:
          - name: ansible_vsock_shell_wait
        env:
          - name: ANSIBLE_VSOCK_SHELL_WAIT
        ini:
          - section: vsock_shell_connection
            key: wait
      remote_user:
        description:
          - Who the agent runs commands as, when you know it.  vsock-shell
            cannot choose a user; this only tells Ansible whom it is
            talking to, for its handling of become and temporary files.
            Unset, Ansible treats the user as unknown and uses the remote
            C($HOME).
          - A user asked for the usual ways, C(-u), the C(remote_user)
            keyword or setting, or C(ansible_user), would choose whom to log
            in as, which vsock-shell cannot do.  It is ignored, with a warning
            (once per user and run), unless it is the one named here.
        type: string
        vars:
          - name: ansible_vsock_shell_user
'''

EXAMPLES = r'''
# inventory.ini
#   [vms]
#   vm3   ansible_host=3                       # guest CID 3, port 1024
#   vm4   ansible_host=vsock:4:5000
#   fc1   ansible_host=hybrid:/run/fc1.vsock:1024
#   local ansible_host=unix:/run/agent.sock
#   [vms:vars]
#   ansible_connection=vsock.vsock_shell.vsock_shell
#   ansible_vsock_shell_wait=60

- hosts: vms
  gather_facts: false
  tasks:
    - ansible.builtin.raw: uname -a
'''

import hashlib
import os
import selectors
import shlex
import shutil
import subprocess

from ansible import constants as C
from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()

# vsock-shell's exit status for a connection, protocol or usage failure
VSH_FAILED = 255


def own_message(stderr):
    """vsock-shell's own closing lines of stderr, as text, or None.

    vsock-shell exits 255 for its own failures and writes them last,
    prefixed with its name; a remote command that exits 255 leaves its own
    output last instead.  A usage error comes first, before any session,
    and is followed by the usage text."""
    lines = [l for l in to_bytes(stderr).splitlines() if l.strip()]
    if len(lines) > 1 and lines[0].startswith(b'vsock-shell: ') and lines[1].startswith(b'usage: vsock-shell'):
        return '%s (vsock-shell refused the command line: check the vsock_shell options'\
            ' against this vsock-shell version)' % to_text(lines[0][len(b'vsock-shell: '):],
                                                          errors='surrogate_or_replace')
    own = []
    while lines and lines[-1].startswith(b'vsock-shell: '):
        own.insert(0, lines.pop())
    if not own:
        return None
    return '; '.join(to_text(l[len(b'vsock-shell: '):], errors='surrogate_or_replace') for l in own)


class Connection(ConnectionBase):
    ''' vsock-shell: commands and files over AF_VSOCK '''

    transport = 'vsock.vsock_shell.vsock_shell'
    has_pipelining = True
    has_tty = False  # sessions never get a pty

    def __init__(self, *args, **kwargs):
        super(Connection, self).__init__(*args, **kwargs)
        self._vsh = None
        self._var_options = {}

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super(Connection, self).set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._var_options = var_options or {}
        self._ignore_remote_user((task_keys or {}).get('remote_user'))

    # -- the remote user -------------------------------------------------

    def _ignore_remote_user(self, keyword_user):
        """A user asked for with -u, remote_user or ansible_user cannot be
        logged in as: warn, once per user and run, and let Ansible go on
        with the user ansible_vsock_shell_user names (or none), so that it
        does not put its temporary files in that user's home, as the
        agent's user."""
        named = self._var_options.get('ansible_vsock_shell_user') or None
        # ansible_user beats -u and the keyword, as it does for ssh
        asked = self._play_context.remote_user or keyword_user
        self.set_option('remote_user', named)
        if not asked or asked == named:
            return
        # workers are processes of their own: the run's local temporary
        # directory remembers which users were warned about
        flag = os.path.join(C.DEFAULT_LOCAL_TMP, 'vsock_shell-user-'
                            + hashlib.sha256(to_bytes(asked, errors='surrogate_or_replace')).hexdigest()[:32])
        try:
            os.close(os.open(flag, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return
        except OSError:
            pass
        display.warning(u"vsock_shell: remote_user '%s' is ignored (first on %s): vsock-shell cannot"
                        u" log in as a user, commands run as the agent's user. Use become to run as"
                        u" another user; set ansible_vsock_shell_user to the agent's user to tell"
                        u" Ansible who that is (the same name as remote_user silences this)."
                        % (to_text(asked), to_text(self._var_options.get('inventory_hostname')
                                                   or self.get_option('host'))))

    # -- the command line ------------------------------------------------

    def _target(self):
        host = self.get_option('host')
        if not host:
            raise AnsibleConnectionFailure('vsock_shell: no target (set ansible_host)')
        return to_text(host)

    def _common_args(self):
        """Options both modes share, then the target."""
        target = self._target()
        args = []
        port = self.get_option('port')
        if port is not None:
            args += ['-p', str(port)]
        wait = self.get_option('wait')
        if wait:
            args += ['-w', str(wait)]
        key = self.get_option('key_file')
        if key:
            args += ['--key', to_text(key)]
        hub = self.get_option('hub')
        if hub and target.startswith('@'):
            args += ['--hub', to_text(hub)]
        return args + [target]

    def _exec_args(self, cmd):
        return [self._vsh, '-T'] + self._common_args() + ['--', to_text(cmd)]

    def _cp_args(self, src, dst):
        return [self._vsh, 'cp', '-q'] + self._common_args() + [src, dst]

    # -- running vsock-shell ---------------------------------------------

    def _connect(self):
        if not self._connected:
            path = to_text(self.get_option('vsock_shell_path'))
            found = shutil.which(path)
            if not found:
                raise AnsibleError(
                    "unable to find the vsock-shell binary '%s' (set ansible_vsock_shell_path"
                    " or ANSIBLE_VSOCK_SHELL_PATH)" % path)
            self._vsh = found
            display.vvv(u'ESTABLISH VSOCK-SHELL CONNECTION TO %s' % self._target(),
                        host=self._target())
            self._connected = True
        return self

    def _popen(self, args, stdin):
        display.vvv(u'EXEC %s' % shlex.join(args), host=self._target())
        try:
            return subprocess.Popen([to_bytes(a, errors='surrogate_or_strict') for a in args],
                                    stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            raise AnsibleError('unable to run %s: %s' % (args[0], to_native(e)))

    def _check_alive(self, rc, stderr, what):
        """Raise AnsibleConnectionFailure when vsock-shell itself failed."""
        if rc < 0:
            raise AnsibleConnectionFailure('vsock-shell died of signal %d while %s %s'
                                           % (-rc, what, self._target()))
        if rc == VSH_FAILED:
            msg = own_message(stderr)
            if msg is not None:
                raise AnsibleConnectionFailure('Failed to %s %s with vsock-shell: %s'
                                               % (what, self._target(), msg))

    def _become_handshake(self, p):
        """Before stdin carries anything else: read until the become plugin
        reports success or its password prompt, and answer the prompt.
        Returns what was read from stdout and from stderr."""
        out = {p.stdout.fileno(): b'', p.stderr.fileno(): b''}
        seen = b''
        timeout = (self.get_option('wait') or 0) + (self._play_context.timeout or 10)
        with selectors.DefaultSelector() as sel:
            for fd in out:
                sel.register(fd, selectors.EVENT_READ)
            while not self.become.check_success(seen) and not self.become.check_password_prompt(seen):
                events = sel.select(timeout)
                if not events:
                    p.kill()
                    p.communicate()
                    raise AnsibleError('timeout (%ss) waiting for the privilege escalation prompt: %s'
                                       % (timeout, to_native(seen)))
                for key, _ in events:
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fd)
                        continue
                    out[key.fd] += chunk
                    seen += chunk
                if not sel.get_map():
                    break
        if not self.become.check_success(seen) and self.become.check_password_prompt(seen):
            become_pass = self.become.get_option('become_pass', playcontext=self._play_context)
            try:
                p.stdin.write(to_bytes(become_pass or '', errors='surrogate_or_strict') + b'\n')
                p.stdin.flush()
            except BrokenPipeError:
                pass
            # the prompt was for us, not part of the command's output
            b_prompt = to_bytes(self.become.prompt or '').strip()
            if b_prompt:
                out = dict((fd, b.replace(b_prompt, b'', 1)) for fd, b in out.items())
        return out[p.stdout.fileno()], out[p.stderr.fileno()]

    # -- the connection interface ----------------------------------------

    def exec_command(self, cmd, in_data=None, sudoable=True):
        ''' run a command in the guest: vsock-shell [opts] TARGET -- CMD '''
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)

        prompt = bool(sudoable and self.become and self.become.expect_prompt())
        stdin = subprocess.PIPE if (in_data is not None or prompt) else subprocess.DEVNULL
        p = self._popen(self._exec_args(cmd), stdin)
        pre_out = pre_err = b''
        if prompt:
            pre_out, pre_err = self._become_handshake(p)
        # communicate() ignores EPIPE: a command may exit without reading
        # all of its stdin
        stdout, stderr = p.communicate(in_data)
        stdout, stderr = pre_out + stdout, pre_err + stderr
        self._check_alive(p.returncode, stderr, 'reach')
        return (p.returncode, stdout, stderr)

    def put_file(self, in_path, out_path):
        ''' copy a local file into the guest: vsock-shell cp -q TARGET LOCAL :REMOTE '''
        super(Connection, self).put_file(in_path, out_path)
        display.vvv(u'PUT %s TO %s' % (in_path, out_path), host=self._target())
        if not os.path.exists(to_bytes(in_path, errors='surrogate_or_strict')):
            raise AnsibleFileNotFound('file or module does not exist: %s' % to_native(in_path))
        # an absolute local path can be neither '-' (stdin) nor ':remote'
        self._copy(os.path.abspath(to_text(in_path)), ':' + to_text(out_path), 'put',
                   '%s to %s' % (in_path, out_path))

    def fetch_file(self, in_path, out_path):
        ''' copy a file out of the guest: vsock-shell cp -q TARGET :REMOTE LOCAL '''
        super(Connection, self).fetch_file(in_path, out_path)
        display.vvv(u'FETCH %s TO %s' % (in_path, out_path), host=self._target())
        self._copy(':' + to_text(in_path), os.path.abspath(to_text(out_path)), 'fetch',
                   '%s to %s' % (in_path, out_path))

    def _copy(self, src, dst, verb, what):
        p = self._popen(self._cp_args(src, dst), subprocess.DEVNULL)
        stdout, stderr = p.communicate()
        self._check_alive(p.returncode, stderr, verb + ' a file on')
        if p.returncode != 0:
            msg = own_message(stderr) or to_text(stderr + stdout, errors='surrogate_or_replace').strip()
            raise AnsibleError('unable to %s %s on %s (vsock-shell cp exited %d): %s'
                               % (verb, what, self._target(), p.returncode, msg))

    def close(self):
        ''' nothing stays open between sessions '''
        self._connected = False

    def reset(self):
        self.close()
