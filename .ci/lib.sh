# Helpers of the .ci scripts. Source it after setting TAG, the name each line is tagged with:
#   TAG=kubectl; . "$(dirname "$0")/lib.sh"

# say WORDS...: a progress line, on stderr (stdout may be captured, as by ensure_tool).
say() { echo "[$TAG] $*" >&2; }

# as_root COMMAND...: run it as root (sudo unless we are root already).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PACKAGE...: install Debian packages.
apt_install() {
    say "installing $*"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# ensure_tool VARIABLE COMMAND PACKAGE: print the program to run. It is $VARIABLE when set
# (then nothing is installed), else COMMAND, installed from Debian's PACKAGE when missing.
ensure_tool() {
    local variable="$1" command="$2" package="$3"
    if [ -n "${!variable:-}" ]; then
        say "using $variable=${!variable}"
        echo "${!variable}"
        return
    fi
    if command -v "$command" >/dev/null 2>&1; then
        say "$command already installed"
    else
        apt_install "$package" >&2 || return
    fi
    echo "$command"
}
