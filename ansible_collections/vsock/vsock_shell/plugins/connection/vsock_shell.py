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
        - With C(via), C(vsock-shell) runs on another host, the guest's
          hypervisor, over the operator's own C(ssh); one inventory can then
          hold the guests of many hypervisors.
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
          - The vsock-shell binary, as a path or a name looked up in C(PATH)
            (with C(via), the hypervisor's C(PATH)).
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
          - With C(via), a path on the hypervisor; C(VSOCK_SHELL_HUB) names
            this machine's hub and is not passed there.
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
            C(--key FILE) when set (never otherwise).  With C(via), a path on
            the hypervisor.
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
      via:
        description:
          - Run vsock-shell on another host, the guest's hypervisor, through
            the operator's C(ssh), given as C(ssh://[USER@]HOST[:PORT])
            (C(HOST) may be an alias of the ssh configuration).  Commands run as
            C(ssh [via_ssh_args] -T -e none -o BatchMode=yes [-p PORT]
            [-l USER] -- HOST 'vsock-shell ...'), every word shell-quoted for
            the remote shell, which must be a POSIX shell whose start-up
            files print nothing.
          - C(vsock_shell_path), C(key_file) and C(hub) then name the
            hypervisor's files, and the target is as the hypervisor sees it.
          - A file to put is streamed into a private temporary directory on
            the hypervisor (C(mktemp -d), under its C($TMPDIR) or C(/tmp)),
            checked for its full size, given the local file's mode, copied
            with C(vsock-shell cp), and removed; the hypervisor needs room
            for the largest file.  A file to fetch is streamed out of
            C(vsock-shell cp TARGET :PATH -) into a temporary file beside
            the local destination, renamed into place only when the copy
            succeeded.
          - A command's status passes through ssh unchanged, 255 included,
            as the remote shell reports it after vsock-shell exits; without
            that report, ssh failed and the host is unreachable.
          - Unset or empty, vsock-shell runs on this machine.
        type: string
        vars:
          - name: ansible_vsock_shell_via
        env:
          - name: ANSIBLE_VSOCK_SHELL_VIA
        ini:
          - section: vsock_shell_connection
            key: via
      via_ssh_args:
        description:
          - Options for ssh when C(via) is set, split as a shell would
            (C(-F FILE), C(-i KEY), C(-o ControlMaster=auto ...)); they come
            first, so an C(-o) here wins over the plugin's own.
        type: string
        vars:
          - name: ansible_vsock_shell_via_ssh_args
        env:
          - name: ANSIBLE_VSOCK_SHELL_VIA_SSH_ARGS
        ini:
          - section: vsock_shell_connection
            key: via_ssh_args
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
#
#   [hyp2_vms]                                 # guests of another hypervisor
#   web1  ansible_host=@web1
#   db1   ansible_host=5
#   [hyp2_vms:vars]
#   ansible_connection=vsock.vsock_shell.vsock_shell
#   ansible_vsock_shell_via=ssh://admin@hyp2.example.org:2222

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
import stat
import subprocess

from urllib.parse import unquote, urlsplit

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


def parse_via(via):
    """ssh://[USER@]HOST[:PORT] as (user or None, host, port or None)."""
    bad = AnsibleError("vsock_shell: via '%s' is not ssh://[USER@]HOST[:PORT]" % via)
    try:
        u = urlsplit(via)
        port = u.port
    except ValueError:
        raise bad
    if u.scheme != 'ssh' or not u.hostname or u.password is not None or u.path not in ('', '/') \
            or u.query or u.fragment:
        raise bad
    # the host as written (urlsplit lowers it), without an IPv6 literal's brackets
    host = u.netloc.rpartition('@')[2]
    if host.startswith('['):
        host = host[1:host.index(']')]
    else:
        host = host.partition(':')[0]
    return (unquote(u.username) if u.username else None), host, port


def tail_text(b, n=3):
    """The last n non-blank lines of b, as one line of text."""
    lines = [l.strip() for l in to_bytes(b).splitlines() if l.strip()]
    return ' '.join(to_text(l, errors='surrogate_or_replace') for l in lines[-n:])


class Connection(ConnectionBase):
    ''' vsock-shell: commands and files over AF_VSOCK '''

    transport = 'vsock.vsock_shell.vsock_shell'
    has_pipelining = True
    has_tty = False  # sessions never get a pty

    def __init__(self, *args, **kwargs):
        super(Connection, self).__init__(*args, **kwargs)
        self._vsh = None
        self._ssh = None
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

    def _via(self):
        """The via option as text, or None."""
        via = self.get_option('via')
        return to_text(via) if via else None

    def _where(self):
        """The target, and the hypervisor when there is one, for messages."""
        via = self._via()
        return self._target() + (' via ' + via if via else '')

    def _hub(self):
        hub = self.get_option('hub')
        if hub and self._via():
            # vsock-shell's own variable names this machine's hub
            _, origin = C.config.get_config_value_and_origin(
                'hub', plugin_type='connection', plugin_name=self._load_name, variables=self._var_options)
            if origin == 'env: VSOCK_SHELL_HUB':
                return None
        return hub

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
        hub = self._hub()
        if hub and target.startswith('@'):
            args += ['--hub', to_text(hub)]
        return args + [target]

    def _exec_args(self, cmd):
        return [self._vsh, '-T'] + self._common_args() + ['--', to_text(cmd)]

    def _cp_args(self, src, dst):
        return self._cp_prefix() + [src, dst]

    def _cp_prefix(self):
        return [self._vsh, 'cp', '-q'] + self._common_args()

    # -- through ssh, on the hypervisor ----------------------------------

    def _ssh_args(self, script):
        """ssh's command line that runs script, a POSIX shell script, on
        the hypervisor.  ssh hands its command to the remote user's shell
        as one string: script is that string, its words quoted already."""
        user, host, port = parse_via(self._via())
        args = [self._ssh] + shlex.split(to_text(self.get_option('via_ssh_args') or ''))
        # no pty, no escape character: stdin and stdout carry binary data
        args += ['-T', '-e', 'none', '-o', 'BatchMode=yes']
        if port is not None:
            args += ['-p', str(port)]
        if user is not None:
            args += ['-l', user]
        return args + ['--', host, script]

    def _via_script(self, body):
        """body, run in a subshell, then its status reported on stderr
        after a fresh random mark: (script, mark).  Only a shell that ran
        to the end prints it, so a missing report means ssh failed, whatever
        its exit status."""
        mark = 'vsock_shell-via-status-' + os.urandom(8).hex()
        return ("( %s ); s=$?; printf '\\n%%s %%s\\n' %s \"$s\" >&2; exit \"$s\""
                % (body, mark)), to_bytes(mark)

    def _via_status(self, rc, stderr, mark, what):
        """The remote status from the report, and stderr without it; or
        AnsibleConnectionFailure when there is none (ssh failed)."""
        i = stderr.rfind(b'\n' + mark + b' ')
        if i >= 0:
            start = i + len(mark) + 2
            end = stderr.find(b'\n', start)
            end = len(stderr) if end < 0 else end
            try:
                status = int(stderr[start:end])
            except ValueError:
                status = None
            if status is not None:
                return status, stderr[:i] + stderr[end + 1:]
        if rc < 0:
            why = 'ssh died of signal %d' % -rc
        else:
            why = 'ssh exited %d before the command reported its status' % rc
        raise AnsibleConnectionFailure('Failed to %s %s over ssh: %s: %s'
                                       % (what, self._where(), why, tail_text(stderr) or 'no message'))

    # -- running vsock-shell ---------------------------------------------

    def _connect(self):
        if not self._connected:
            path = to_text(self.get_option('vsock_shell_path'))
            via = self._via()
            if via:
                parse_via(via)
                self._ssh = shutil.which('ssh')
                if not self._ssh:
                    raise AnsibleError("unable to find ssh, which via '%s' needs" % via)
                # a path on the hypervisor: its shell looks it up
                self._vsh = path
            else:
                found = shutil.which(path)
                if not found:
                    raise AnsibleError(
                        "unable to find the vsock-shell binary '%s' (set ansible_vsock_shell_path"
                        " or ANSIBLE_VSOCK_SHELL_PATH)" % path)
                self._vsh = found
            display.vvv(u'ESTABLISH VSOCK-SHELL CONNECTION TO %s' % self._where(),
                        host=self._target())
            self._connected = True
        return self

    def _popen(self, args, stdin, stdout=subprocess.PIPE):
        display.vvv(u'EXEC %s' % shlex.join(args), host=self._target())
        try:
            return subprocess.Popen([to_bytes(a, errors='surrogate_or_strict') for a in args],
                                    stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
        except OSError as e:
            raise AnsibleError('unable to run %s: %s' % (args[0], to_native(e)))

    def _check_alive(self, rc, stderr, what):
        """Raise AnsibleConnectionFailure when vsock-shell itself failed."""
        if rc < 0:
            raise AnsibleConnectionFailure('vsock-shell died of signal %d while %s %s'
                                           % (-rc, what, self._where()))
        if rc == VSH_FAILED:
            msg = own_message(stderr)
            if msg is not None:
                raise AnsibleConnectionFailure('Failed to %s %s with vsock-shell: %s'
                                               % (what, self._where(), msg))

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
        args = self._exec_args(cmd)
        if self._via():
            script, mark = self._via_script(shlex.join(args))
            args = self._ssh_args(script)
        p = self._popen(args, stdin)
        pre_out = pre_err = b''
        if prompt:
            pre_out, pre_err = self._become_handshake(p)
        # communicate() ignores EPIPE: a command may exit without reading
        # all of its stdin
        stdout, stderr = p.communicate(in_data)
        stdout, stderr = pre_out + stdout, pre_err + stderr
        rc = p.returncode
        if self._via():
            rc, stderr = self._via_status(rc, stderr, mark, 'reach')
        self._check_alive(rc, stderr, 'reach')
        return (rc, stdout, stderr)

    def put_file(self, in_path, out_path):
        ''' copy a local file into the guest: vsock-shell cp -q TARGET LOCAL :REMOTE '''
        super(Connection, self).put_file(in_path, out_path)
        display.vvv(u'PUT %s TO %s' % (in_path, out_path), host=self._target())
        if not os.path.exists(to_bytes(in_path, errors='surrogate_or_strict')):
            raise AnsibleFileNotFound('file or module does not exist: %s' % to_native(in_path))
        what = '%s to %s' % (in_path, out_path)
        if self._via():
            return self._put_via(to_text(in_path), to_text(out_path), what)
        # an absolute local path can be neither '-' (stdin) nor ':remote'
        self._copy(os.path.abspath(to_text(in_path)), ':' + to_text(out_path), 'put', what)

    def fetch_file(self, in_path, out_path):
        ''' copy a file out of the guest: vsock-shell cp -q TARGET :REMOTE LOCAL '''
        super(Connection, self).fetch_file(in_path, out_path)
        display.vvv(u'FETCH %s TO %s' % (in_path, out_path), host=self._target())
        what = '%s to %s' % (in_path, out_path)
        if self._via():
            return self._fetch_via(to_text(in_path), to_text(out_path), what)
        self._copy(':' + to_text(in_path), os.path.abspath(to_text(out_path)), 'fetch', what)

    def _copy(self, src, dst, verb, what):
        p = self._popen(self._cp_args(src, dst), subprocess.DEVNULL)
        stdout, stderr = p.communicate()
        self._copied(p.returncode, stdout + stderr, stderr, verb, what)

    def _copied(self, rc, output, stderr, verb, what):
        """Raise the error a failed copy deserves."""
        self._check_alive(rc, stderr, verb + ' a file on')
        if rc != 0:
            msg = own_message(stderr) or to_text(output, errors='surrogate_or_replace').strip()
            raise AnsibleError('unable to %s %s on %s (vsock-shell cp exited %d): %s'
                               % (verb, what, self._where(), rc, msg))

    def _put_via(self, in_path, out_path, what):
        """ssh streams the file into a private directory on the hypervisor;
        only when all of it arrived (its size checked: an ssh that dies
        leaves a short file, not an error) does vsock-shell cp send it on,
        with the local file's mode; the directory goes in every case."""
        b_in = to_bytes(in_path, errors='surrogate_or_strict')
        try:
            f = open(b_in, 'rb')
        except OSError as e:
            raise AnsibleError('unable to put %s: %s' % (what, to_native(e)))
        with f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise AnsibleError('unable to put %s: not a regular file' % what)
            name = os.path.basename(in_path) or 'file'
            body = ('umask 077 && t=$(mktemp -d) || exit 1; '
                    'trap \'rm -rf -- "$t"\' 0; trap \'exit 1\' 1 2 13 15; '
                    'f="$t"/%s; cat > "$f" || exit 1; n=$(wc -c < "$f"); n=${n##* }; '
                    '[ "$n" = %d ] || { echo "vsock_shell: the hypervisor received $n of %d bytes" >&2;'
                    ' exit 1; }; chmod %o "$f" && %s "$f" %s'
                    % (shlex.quote(name), st.st_size, st.st_size, stat.S_IMODE(st.st_mode) & 0o777,
                       shlex.join(self._cp_prefix()), shlex.quote(':' + out_path)))
            script, mark = self._via_script(body)
            p = self._popen(self._ssh_args(script), f)
            stdout, stderr = p.communicate()
        rc, stderr = self._via_status(p.returncode, stderr, mark, 'put a file on')
        self._copied(rc, stdout + stderr, stderr, 'put', what)

    def _fetch_via(self, in_path, out_path, what):
        """vsock-shell cp on the hypervisor writes the file to its stdout,
        which ssh brings into a temporary file beside the destination;
        renamed into place only once the copy reported success."""
        dst = os.path.realpath(to_bytes(os.path.abspath(out_path), errors='surrogate_or_strict'))
        d, base = os.path.split(dst)
        tmp = os.path.join(d, b'.' + base + b'.vsh-via-' + to_bytes(os.urandom(6).hex()))
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise AnsibleError('unable to fetch %s: %s' % (what, to_native(e)))
        done = False
        try:
            script, mark = self._via_script(shlex.join(self._cp_args(':' + in_path, '-')))
            p = self._popen(self._ssh_args(script), subprocess.DEVNULL, stdout=fd)
            _, stderr = p.communicate()
            rc, stderr = self._via_status(p.returncode, stderr, mark, 'fetch a file on')
            self._copied(rc, stderr, stderr, 'fetch', what)
            os.fsync(fd)
            os.rename(tmp, dst)
            done = True
        except OSError as e:
            raise AnsibleError('unable to fetch %s: %s' % (what, to_native(e)))
        finally:
            os.close(fd)
            if not done:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def close(self):
        ''' nothing stays open between sessions '''
        self._connected = False

    def reset(self):
        self.close()
