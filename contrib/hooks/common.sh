# Portcullis VM-manager hooks: what contrib/libvirt/qemu and
# contrib/proxmox/portcullis-hook.sh share (contrib/README.md).  Sourced,
# installed as /usr/share/portcullis/hooks/common.sh.
#
# A hook learns what the VM manager says (a VM starts: its id, owner,
# interface, MAC, addresses; a VM stopped) and tells Portcullis through the
# CLI: `vps update` (or `vps add` the first time) and `vps start` on start,
# `vps stop` on stop.  The rules (overlaps, MACs, interfaces) are the
# operations layer's; a hook only carries values and logs what happened.
#
# It never writes to stdout: libvirt reads a qemu hook's stdout as a new
# domain XML at some operations (migrate, restore).  Messages go to syslog
# through logger(1), tag portcullis-hook, and to stderr, which libvirt
# logs when a hook fails and Proxmox shows in the task log.

# Settings, from $PORTCULLIS_HOOK_CONF or /etc/portcullis/hooks.conf (KEY=VALUE
# lines, '#' comments; contrib/hooks/hooks.conf).  Read, never sourced.
PCH_CONF=${PORTCULLIS_HOOK_CONF:-/etc/portcullis/hooks.conf}
PORTCULLIS=/usr/bin/portcullis
PORTCULLIS_CONFIG=/etc/portcullis/portcullis.yaml
STRICT=no
TIMEOUT=30
VMS_DIR=/etc/portcullis/vms
PVE_QEMU_DIR=/etc/pve/qemu-server

pch_by=hook      # who the audit log says made the change
pch_what=        # "libvirt domain web1", for messages
pch_failed=0     # set by pch_error

# pch_log LEVEL MESSAGE: syslog (daemon facility) and stderr.
pch_log() {
        logger -t portcullis-hook -p "daemon.$1" -- "$pch_what: $2" 2>/dev/null
        printf 'portcullis-hook: %s: %s\n' "$pch_what" "$2" >&2
}

# pch_error MESSAGE: logs an error and remembers that the hook failed.
pch_error() {
        pch_failed=1
        pch_log err "$1"
}

# pch_init BY WHAT: reads the settings; BY is the audit log's "by".
pch_init() {
        local line key value n=0

        pch_by=$1
        pch_what=$2
        [ -e "$PCH_CONF" ] || return 0
        if [ ! -r "$PCH_CONF" ]; then
                pch_error "cannot read $PCH_CONF"
                return 1
        fi
        while IFS= read -r line || [ -n "$line" ]; do
                n=$((n + 1))
                line=${line%%#*}
                [[ $line =~ ^[[:space:]]*$ ]] && continue
                if [[ ! $line =~ ^[[:space:]]*([A-Z_]+)[[:space:]]*=[[:space:]]*(.*[^[:space:]])?[[:space:]]*$ ]]; then
                        pch_error "$PCH_CONF:$n: not KEY=VALUE"
                        return 1
                fi
                key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
                case $key in
                PORTCULLIS | PORTCULLIS_CONFIG | STRICT | TIMEOUT | VMS_DIR | PVE_QEMU_DIR) printf -v "$key" '%s' "$value" ;;
                *)
                        pch_error "$PCH_CONF:$n: unknown setting $key"
                        return 1
                        ;;
                esac
        done <"$PCH_CONF"
        case $STRICT in
        yes | no) ;;
        *)
                pch_error "$PCH_CONF: STRICT is yes or no, not '$STRICT'"
                return 1
                ;;
        esac
        if [[ ! $TIMEOUT =~ ^[1-9][0-9]*$ ]]; then
                pch_error "$PCH_CONF: TIMEOUT is a number of seconds, not '$TIMEOUT'"
                return 1
        fi
}

# pch_run ARGS...: runs `portcullis --json ARGS`, its output in $pch_out and
# its messages in $pch_err; returns its status (124: timed out).
pch_run() {
        local errf r

        errf=$(mktemp) || return 2
        pch_out=$(timeout "$TIMEOUT" "$PORTCULLIS" -c "$PORTCULLIS_CONFIG" --json "$@" 2>"$errf" </dev/null)
        r=$?
        pch_err=$(tr '\n' ' ' <"$errf")
        pch_err=${pch_err% }
        rm -f "$errf"
        [ $r = 124 ] && pch_err="no answer within $TIMEOUT s"
        return $r
}

# pch_field KEY[.KEY]: the value at KEY in the JSON object $pch_out ("" if
# none).
pch_field() {
        python3 -c 'import json, sys
v = json.loads(sys.stdin.read())
for k in sys.argv[1].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else str(v).lower() if isinstance(v, bool) else v)' "$1" <<<"$pch_out" 2>/dev/null
}

# pch_failure WHAT: what portcullis said of its failure, as one sentence:
# its own ("Failed to add vps-101: address ... overlaps ..."), or WHAT
# ("Failed to mark vps-101 stopped") and the cause (a refused value, no
# database).
pch_failure() {
        local msg=${pch_err#portcullis: }

        msg=${msg% See: portcullis vps --help}
        [[ $msg == Failed\ * ]] || msg="$1: ${msg:-portcullis exited with an error}"
        printf '%s' "$msg"
}

# pch_note ID: logs what portcullis said beside a success: that the agent
# is not running (the change is stored, and enforced when it starts).
pch_note() {
        [ -n "$pch_err" ] && pch_log notice "$1: ${pch_err#portcullis: }"
        [ "$(pch_field agent.state)" = "not running" ] &&
                pch_log notice "$1: portcullisd is not running: the change is stored and will be enforced when it starts"
        return 0
}

# pch_started ID OWNER SITE LANG IFACE MAC REASON ADDRESS...: the VM of VPS
# ID runs (or is about to) with these values.  Registers it the first time
# (OWNER, SITE, LANG: "" for the configuration's default), else updates its
# interface, MAC and addresses (owner, site and language are only ever set
# by the first registration); marks it running.  0, or 1 logged.
pch_started() {
        local id=$1 owner=$2 site=$3 lang=$4 iface=$5 mac=$6 reason=$7 a
        local -a opts=(--iface "$iface" --by "$pch_by" --reason "$reason")

        shift 7
        [ -n "$mac" ] && opts+=(--mac "$mac")
        for a in "$@"; do opts+=(--addr "$a"); done
        if pch_run vps update "$id" "${opts[@]}"; then
                pch_note "$id"
                [ "$(pch_field changed)" = true ] &&
                        pch_log info "$id: interface $iface, MAC ${mac:-none}, addresses $* (updated)"
                # What the first registration set stays: say so if it differs.
                for a in owner site lang; do
                        local want=${!a} have
                        have=$(pch_field "$a")
                        [ -n "$want" ] && [ "$want" != "$have" ] &&
                                pch_log warning "$id: $a stays '$have' (the VM says '$want'): change it by hand (vps remove, vps add)"
                done
        elif [[ $pch_err == *"vps $id does not exist"* ]]; then
                opts+=(--owner "$owner")
                [ -n "$site" ] && opts+=(--site "$site")
                [ -n "$lang" ] && opts+=(--lang "$lang")
                if ! pch_run vps add "$id" "${opts[@]}"; then
                        pch_error "$(pch_failure "Failed to register $id")"
                        return 1
                fi
                pch_note "$id"
                pch_log info "$id: registered at site $(pch_field site), interface $iface, MAC ${mac:-none}, addresses $*"
                return 0 # registered running
        else
                pch_error "$(pch_failure "Failed to register or update $id")"
                return 1
        fi
        if ! pch_run vps start "$id" --by "$pch_by" --reason "$reason"; then
                pch_error "$(pch_failure "Failed to mark $id running")"
                return 1
        fi
        pch_note "$id"
        [ "$(pch_field changed)" = true ] && pch_log info "$id: running"
        return 0
}

# pch_stopped ID REASON: the VM of VPS ID stopped.  0, or 1 logged.
pch_stopped() {
        if ! pch_run vps stop "$1" --by "$pch_by" --reason "$2"; then
                pch_error "$(pch_failure "Failed to mark $1 stopped")"
                return 1
        fi
        pch_note "$1"
        [ "$(pch_field changed)" = true ] && pch_log info "$1: stopped (its policy stays in force)"
        return 0
}

# pch_exit MAY_BLOCK: ends the hook.  A failure refuses the VM manager's
# operation only with STRICT=yes and where that stops a VM from starting
# (MAY_BLOCK yes); everywhere else the VM goes on, the failure logged.
pch_exit() {
        if [ "$pch_failed" = 1 ] && [ "$1" = yes ] && [ "$STRICT" = yes ]; then
                pch_log err "STRICT=yes: refusing the start"
                exit 1
        fi
        exit 0
}
