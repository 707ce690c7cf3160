# apt_install PKG...: apt-get install with retries (another apt may hold the lock on a fresh
# machine). Sourced by .ci/run and the scripts that install their own tools.
apt_install() {
  local tries=0
  export DEBIAN_FRONTEND=noninteractive
  until apt-get update -q && apt-get install -y -q --no-install-recommends "$@"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 10 ]; then echo "apt-get failed $tries times" >&2; return 1; fi
    echo "apt-get busy or failing (try $tries); retrying in 15s" >&2
    sleep 15
  done
}
