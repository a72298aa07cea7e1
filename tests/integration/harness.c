/*
 * Integration test harness; see harness.h.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h> /* cmocka.h needs it, and stdarg.h and stddef.h */
#include <stddef.h>

#include <cmocka.h> /* it_group_test_clean_stop() is a test */

extern char **environ;

#define IT_START_ATTEMPTS 3
/* `impulse serve`'s exit status when its address is in use
 * (IMP_SERVE_EXIT_ADDR_IN_USE, docs/operations.md): the only one after
 * which a start is tried again, on another port. */
#define IT_EXIT_ADDR_IN_USE 4
#define IT_REAP_TIMEOUT_MS 5000u

uint64_t it_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void it_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  va_list ap;
  fputs("[harness] ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* ---- files --------------------------------------------------------------- */

int it_read_file(const char *path, char **data, size_t *len) {
  int rc = sup_read_file(path, data, len);
  if (rc == 0) return 0;
  errno = -rc;
  return -1;
}

int it_read_function(const char *fn, char **data, size_t *len) {
  char path[512];
  it_function_path(fn, path, sizeof path);
  return it_read_file(path, data, len);
}

int it_write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      close(fd);
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return close(fd) == 0 ? 0 : -1;
}

void it_function_path(const char *name, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s.so", IMPULSE_FUNCTIONS_DIR, name);
}

/* ---- processes ----------------------------------------------------------- */

/* Builds an environment: ours minus the names in `drop`, plus `add`.
 * The array and its strings point into environ / add (not copied); free
 * only the array. */
static char **make_env(const char *const *drop, const char *const *add) {
  size_t n = 0, k = 0;
  while (environ[n]) n++;
  size_t nadd = 0;
  while (add && add[nadd]) nadd++;
  char **env = calloc(n + nadd + 1, sizeof *env);
  if (env == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    int skip = 0;
    for (size_t d = 0; drop && drop[d]; d++) {
      size_t dl = strlen(drop[d]);
      if (strncmp(environ[i], drop[d], dl) == 0 && environ[i][dl] == '=')
        skip = 1;
    }
    if (!skip) env[k++] = environ[i];
  }
  for (size_t i = 0; i < nadd; i++) env[k++] = (char *)add[i];
  env[k] = NULL;
  return env;
}

int it_server_group_alive(const it_server_t *server) {
  if (server->pid <= 0) return 0;
  return sup_reap_group(server->pid);
}

/* SIGKILLs what is left of the group and waits (bounded) until it is gone. */
static void kill_group(pid_t pgid) {
  if (sup_kill_group(pgid, IT_REAP_TIMEOUT_MS) != 0)
    say("process group %d still has processes after SIGKILL", (int)pgid);
}

void it_server_dump_log(const it_server_t *server, size_t bytes) {
  char *data;
  size_t len;
  if (server->log_file[0] == '\0' ||
      it_read_file(server->log_file, &data, &len))
    return;
  size_t off = len > bytes ? len - bytes : 0;
  fprintf(stderr, "----- server log (%s, last %zu bytes) -----\n%s\n-----\n",
          server->log_file, len - off, data + off);
  free(data);
}

static int read_token(it_server_t *server) {
  char path[256], *data;
  size_t len;
  snprintf(path, sizeof path, "%s/admin.token", server->state_dir);
  if (it_read_file(path, &data, &len) != 0) {
    say("cannot read %s: %s", path, strerror(errno));
    return -1;
  }
  while (len && (data[len - 1] == '\n' || data[len - 1] == '\r')) len--;
  data[len] = '\0';
  int ok = len > 0 && len < sizeof server->token;
  if (ok) memcpy(server->token, data, len + 1);
  free(data);
  if (!ok) say("%s is empty or too long", path);
  return ok ? 0 : -1;
}

/* Stops the guardian of the current server run (see start_guardian). */
static void guardian_stop(it_server_t *server) {
  if (server->guard_pid > 0) {
    kill(server->guard_pid, SIGKILL);
    waitpid(server->guard_pid, NULL, 0);
  }
  if (server->guard_fd > 0) close(server->guard_fd);
  server->guard_pid = 0;
  server->guard_fd = 0;
}

/*
 * Forks a guardian that waits for EOF on a pipe only we hold the write end
 * of. EOF means this process died without stopping the server (we kill the
 * guardian first on every normal path): it then SIGKILLs the server's
 * process group and execs `rm -rf` on the temporary directory. The child
 * of a possibly multi-threaded process, it uses async-signal-safe calls
 * only, and closes every inherited descriptor so it keeps no client
 * connection open.
 */
static void start_guardian(it_server_t *server) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return;
  const char *const rm[] = {"rm", "-rf", server->root, NULL};
  pid_t pgid = server->pid;
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return;
  }
  if (pid == 0) {
    setpgid(0, 0); /* out of the test's process group */
    if (dup2(p[0], 3) < 0) _exit(1);
    close_range(4, ~0u, 0);
    char c;
    ssize_t n;
    do {
      n = read(3, &c, 1);
    } while (n < 0 && errno == EINTR);
    kill(-pgid, SIGKILL);
    execve("/bin/rm", (char *const *)rm, environ);
    _exit(0);
  }
  close(p[0]);
  server->guard_pid = pid;
  server->guard_fd = p[1];
}

/* Forks and execs the server; does not wait for it. */
static int spawn_server(it_server_t *server) {
  char listen[64];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", server->port);
  const char *argv[IT_MAX_ARGS + 16];
  int n = 0;
  const char *bin = server->bin[0] ? server->bin : IMPULSE_BIN;
  argv[n++] = bin;
  argv[n++] = "serve";
  argv[n++] = "--state-dir";
  argv[n++] = server->state_dir;
  argv[n++] = "--listen";
  argv[n++] = listen;
  argv[n++] = "--ready-file";
  argv[n++] = server->ready_file;
  int has_http = 0;
  for (int i = 0; i < server->nargs; i++) {
    has_http |= strcmp(server->args[i], "--http") == 0;
    argv[n++] = server->args[i];
  }
  if (!has_http) { /* never the fixed default port: tests run side by side */
    argv[n++] = "--http";
    argv[n++] = "127.0.0.1:0";
  }
  argv[n] = NULL;
  static const char *const drop[] = {"IMPULSE_STATE_DIR", "IMPULSE_LISTEN",
                                     "IMPULSE_ADDR", "IMPULSE_TOKEN", NULL};
  char **env = make_env(drop, NULL);
  int logfd =
      open(server->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (env == NULL || logfd < 0 || nullfd < 0) {
    say("cannot prepare the server's environment or log: %s", strerror(errno));
    goto fail;
  }
  dprintf(logfd, "===== harness: starting server on %s =====\n", listen);
  sup_spawn_t how = SUP_SPAWN_INIT;
  how.path = bin;
  how.argv = argv;
  how.envp = env;
  how.in = nullfd;
  how.out = how.err = logfd;
  how.own_group = 1;
  how.death_signal = SIGKILL;
  pid_t pid = sup_spawn(&how);
  if (pid < 0) {
    say("fork: %s", strerror(-pid));
    goto fail;
  }
  server->pid = pid;
  start_guardian(server);
  free(env);
  close(logfd);
  close(nullfd);
  return 0;
fail:
  free(env);
  if (logfd >= 0) close(logfd);
  if (nullfd >= 0) close(nullfd);
  return -1;
}

/* Waits for the ready file naming our server. 0, or -1 when the server
 * exited (*exited = its exit status, or 128 + the signal) or the time ran
 * out (*exited = -1). */
static int wait_ready(it_server_t *server, int *exited) {
  uint64_t until = it_now_ms() + IT_READY_TIMEOUT_MS;
  *exited = -1;
  for (;;) {
    uint64_t now = it_now_ms();
    char *data;
    int st;
    int rc = sup_wait_line_file(server->ready_file, server->pid,
                                until > now ? (unsigned)(until - now) : 0, NULL,
                                &data, &st);
    if (rc == -ECHILD) {
      say("server exited before it was ready (%s %d)",
          WIFEXITED(st) ? "status" : "signal",
          WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
      kill_group(server->pid);
      server->pid = 0;
      guardian_stop(server);
      *exited = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return -1;
    }
    if (rc != 0) {
      say("server not ready within %u ms", IT_READY_TIMEOUT_MS);
      return -1;
    }
    int pid = 0;
    char where[128] = "", http[64] = "";
    int ok = sscanf(data, "%d %127s %63s", &pid, where, http) >= 2 &&
             pid == (int)server->pid && strcmp(where, server->addr) == 0;
    free(data);
    if (ok) {
      /* Third field: the HTTP front end's address, when it is on. */
      const char *colon = strrchr(http, ':');
      server->http_port = colon ? atoi(colon + 1) : 0;
      memcpy(server->http_addr, server->http_port > 0 ? http : "",
             server->http_port > 0 ? sizeof http : 1);
      return 0;
    }
    it_sleep_ms(20); /* not ours: wait for the one that is */
  }
}

/* Starts the server, retrying on a new port when it exits during start-up
 * because its port was taken in between (IT_EXIT_ADDR_IN_USE); any other
 * early exit (a crash, a refused state directory, a restart after kill -9
 * that fails) is a failure at once. */
static int launch(it_server_t *server, int keep_port) {
  if (!server->subreaper) {
    /* Workers orphaned by a killed server come back to us to be reaped. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    server->subreaper = 1;
  }
  for (int attempt = 0; attempt < IT_START_ATTEMPTS; attempt++) {
    if (!keep_port || attempt > 0 || server->port <= 0) {
      server->port = sup_free_port();
      if (server->port <= 0) {
        say("no free port: %s", strerror(-server->port));
        return -1;
      }
    }
    snprintf(server->addr, sizeof server->addr, "127.0.0.1:%d", server->port);
    unlink(server->ready_file); /* a kill -9 leaves the old one behind */
    if (spawn_server(server) != 0) return -1;
    int exited;
    if (wait_ready(server, &exited) == 0) return read_token(server);
    if (exited != IT_EXIT_ADDR_IN_USE) {
      it_server_dump_log(server, 4000);
      return -1;
    }
    say("port %d in use: starting again on another one", server->port);
  }
  it_server_dump_log(server, 4000);
  return -1;
}

int it_server_start(it_server_t *server, const char *const *extra) {
  return it_server_start_on(server, NULL, extra);
}

int it_server_start_on(it_server_t *server, const char *state_dir,
                       const char *const *extra) {
  snprintf(
      server->root, sizeof server->root, "%s",
      server->root_template ? server->root_template : "/tmp/impulse-it-XXXXXX");
  if (mkdtemp(server->root) == NULL) {
    say("mkdtemp: %s", strerror(errno));
    server->root[0] = '\0';
    return -1;
  }
  if (state_dir == NULL)
    snprintf(server->state_dir, sizeof server->state_dir, "%s/state",
             server->root);
  else if (snprintf(server->state_dir, sizeof server->state_dir, "%s",
                    state_dir) >= (int)sizeof server->state_dir) {
    say("state directory path too long: %s", state_dir);
    return -1;
  }
  snprintf(server->ready_file, sizeof server->ready_file, "%s/ready",
           server->root);
  snprintf(server->log_file, sizeof server->log_file, "%s/server.log",
           server->root);
  server->nargs = 0;
  for (size_t i = 0; extra && extra[i]; i++) {
    if (server->nargs == IT_MAX_ARGS) {
      say("too many server flags");
      return -1;
    }
    server->args[server->nargs] = strdup(extra[i]);
    if (server->args[server->nargs] == NULL) return -1;
    server->nargs++;
  }
  return launch(server, 0);
}

int it_server_restart(it_server_t *server) {
  if (server->pid > 0) {
    say("restart: the server is still running");
    return -1;
  }
  return launch(server, 1);
}

int it_server_stop(it_server_t *server) {
  if (server->pid <= 0) return -1;
  pid_t pid = server->pid;
  int status = sup_stop(pid, IT_STOP_TIMEOUT_MS);
  if (status == -ETIMEDOUT)
    say("server %d did not stop within %u ms of SIGTERM: SIGKILL", (int)pid,
        IT_STOP_TIMEOUT_MS);
  if (status < 0) status = -1;
  /* A clean stop takes the workers down too; give them a moment. */
  server->stragglers = 0;
  uint64_t grace = it_now_ms() + 2000;
  while (sup_reap_group(pid)) {
    if (it_now_ms() > grace) {
      server->stragglers = 1;
      say("workers of server %d still alive 2 s after it exited", (int)pid);
      break;
    }
    it_sleep_ms(10);
  }
  kill_group(pid);
  server->pid = 0;
  guardian_stop(server);
  return status;
}

void it_server_kill9(it_server_t *server) {
  if (server->pid <= 0) return;
  pid_t pid = server->pid;
  kill(-pid, SIGKILL);
  waitpid(pid, NULL, 0);
  kill_group(pid);
  server->pid = 0;
  guardian_stop(server);
}

void it_server_kill9_server_only(it_server_t *server) {
  if (server->pid <= 0) return;
  pid_t pid = server->pid;
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  server->pid = 0;
  /* Only one generation of survivors is tracked. */
  if (server->old_pgid > 0) kill_group(server->old_pgid);
  if (server->old_guard_pid > 0) {
    kill(server->old_guard_pid, SIGKILL);
    waitpid(server->old_guard_pid, NULL, 0);
    close(server->old_guard_fd);
  }
  server->old_pgid = pid;
  server->old_guard_pid = server->guard_pid;
  server->old_guard_fd = server->guard_fd;
  server->guard_pid = 0;
  server->guard_fd = 0;
}

void it_server_destroy(it_server_t *server) {
  if (server->pid > 0 && it_server_stop(server) < 0) it_server_kill9(server);
  if (server->old_pgid > 0) {
    kill_group(server->old_pgid);
    server->old_pgid = 0;
  }
  if (server->old_guard_pid > 0) {
    kill(server->old_guard_pid, SIGKILL);
    waitpid(server->old_guard_pid, NULL, 0);
    close(server->old_guard_fd);
    server->old_guard_pid = 0;
  }
  if (server->root[0]) {
    if (getenv("IMPULSE_IT_KEEP") != NULL)
      say("keeping %s (IMPULSE_IT_KEEP is set)", server->root);
    else
      sup_rm_tree(server->root);
    server->root[0] = '\0';
  }
  for (int i = 0; i < server->nargs; i++) free(server->args[i]);
  server->nargs = 0;
}

int it_fixture_setup(void **state, const char *const *extra) {
  it_server_t *server = calloc(1, sizeof *server);
  *state = server;
  if (server == NULL) return -1;
  if (it_server_start(server, extra) != 0) {
    it_server_destroy(server);
    free(server);
    *state = NULL;
    return -1;
  }
  return 0;
}

int it_fixture_plain(void **state) {
  return it_fixture_setup(state, NULL);
}

int it_fixture_invoke_auth(void **state) {
  static const char *const extra[] = {"--invoke-auth", "token", NULL};
  return it_fixture_setup(state, extra);
}

/* Counts sanitizer reports in the server log (see it_server_finish). */
static int sanitizer_reports(const it_server_t *server) {
  static const char *const marks[] = {
      "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
      "WARNING: ThreadSanitizer", "runtime error:", NULL};
  char *data;
  size_t len;
  int n = 0;
  if (server->log_file[0] == '\0' ||
      it_read_file(server->log_file, &data, &len))
    return 0;
  for (char *line = data; line && *line;) {
    char *eol = strchr(line, '\n');
    if (eol) *eol = '\0';
    for (int i = 0; marks[i]; i++)
      if (strstr(line, marks[i]) && !strstr(line, "/functions/")) {
        say("sanitizer report in the server log: %s", line);
        n++;
      }
    line = eol ? eol + 1 : NULL;
  }
  free(data);
  return n;
}

int it_server_stop_checked(it_server_t *server) {
  int rc = 0;
  if (server->pid > 0) {
    int st = it_server_stop(server);
    if (st != 0) {
      say("server did not stop cleanly (status %d)", st);
      rc = -1;
    }
    if (server->stragglers) rc = -1;
  }
  if (sanitizer_reports(server) > 0) rc = -1;
  return rc;
}

int it_server_finish(it_server_t *server) {
  int rc = it_server_stop_checked(server);
  if (rc != 0 || !server->test_passed) it_server_dump_log(server, 12000);
  it_server_destroy(server);
  return rc;
}

int it_fixture_teardown(void **state) {
  it_server_t *server = *state;
  if (server == NULL) return 0;
  int rc = it_server_finish(server);
  free(server);
  *state = NULL;
  return rc;
}

int it_group_setup(void **state, size_t size, const char *const *extra,
                   uint32_t timeout_ms, int (*more)(void *fixture)) {
  it_group_t *group = calloc(1, size);
  *state = NULL;
  if (group == NULL) return -1;
  if (it_server_start(&group->server, extra) != 0) goto fail;
  group->admin = it_connect(&group->server, 1, timeout_ms);
  if (group->admin == NULL) goto fail;
  if (it_deploy_fn(group->admin, "echo", "echo", NULL, NULL) != IMPULSE_S_OK)
    goto fail;
  if (more != NULL && more(group) != 0) goto fail;
  *state = group;
  return 0;
fail:
  it_server_dump_log(&group->server, 8000);
  impulse_client_close(group->admin);
  it_server_destroy(&group->server);
  free(group);
  return -1;
}

int it_group_teardown(void **state) {
  it_group_t *group = *state;
  if (group == NULL) return 0;
  impulse_client_close(group->admin);
  group->server.test_passed = !group->in_test && !group->failed_any;
  int rc = it_server_finish(&group->server);
  free(group);
  *state = NULL;
  return rc;
}

void *it_group_test_start(void **state) {
  it_group_t *group = *state;
  if (group->in_test) group->failed_any = 1;
  group->in_test = 1;
  return group;
}

void it_group_test_end(it_group_t *group) {
  group->in_test = 0;
}

int it_group_stop(it_group_t *group) {
  impulse_client_close(group->admin);
  group->admin = NULL;
  return it_server_stop_checked(&group->server);
}

void it_group_test_clean_stop(void **state) {
  it_group_t *group = it_group_test_start(state);
  assert_int_equal(it_group_stop(group), 0);
  it_group_test_end(group);
}

/* ---- clients ------------------------------------------------------------- */

impulse_client_t *it_connect(const it_server_t *server, int admin,
                             uint32_t timeout_ms) {
  impulse_client_t *client = NULL;
  int rc =
      impulse_client_connect(server->addr, admin ? server->token : "", &client);
  if (rc != IMPULSE_S_OK) {
    say("connect to %s: %s: %s", server->addr, impulse_status_name(rc),
        impulse_client_error(client));
    impulse_client_close(client);
    return NULL;
  }
  impulse_client_set_timeout(client, timeout_ms);
  return client;
}

impulse_client_t *it_connect_ok(const it_server_t *server, int admin,
                                uint32_t timeout_ms) {
  impulse_client_t *client = it_connect(server, admin, timeout_ms);
  assert_non_null(client);
  return client;
}

int it_deploy_fn(impulse_client_t *client, const char *name, const char *fn,
                 const impulse_deploy_opts_t *opts, uint32_t *version) {
  char path[512];
  it_function_path(fn, path, sizeof path);
  return it_deploy_file(client, name, path, opts, version);
}

int it_deploy_fn_on(const it_server_t *server, uint32_t timeout_ms,
                    const char *name, const char *fn,
                    const impulse_deploy_opts_t *opts, uint32_t *version) {
  impulse_client_t *client = it_connect(server, 1, timeout_ms);
  if (client == NULL) return IMPULSE_S_CONNECTION;
  int rc = it_deploy_fn(client, name, fn, opts, version);
  impulse_client_close(client);
  return rc;
}

int it_deploy_file(impulse_client_t *client, const char *name, const char *path,
                   const impulse_deploy_opts_t *opts, uint32_t *version) {
  char *data;
  size_t len;
  if (it_read_file(path, &data, &len) != 0) {
    say("cannot read %s: %s", path, strerror(errno));
    return IMPULSE_S_INVALID;
  }
  int rc = impulse_deploy(client, name, data, len, opts, version);
  if (rc != IMPULSE_S_OK)
    say("deploy %s from %s: %s: %s", name, path, impulse_status_name(rc),
        impulse_client_error(client));
  free(data);
  return rc;
}

int it_invoke(impulse_client_t *client, const char *function,
              const char *payload, impulse_response_t **out) {
  *out = NULL;
  int rc =
      impulse_invoke(client, function, payload, strlen(payload), NULL, out);
  if (rc != IMPULSE_S_OK) {
    *out = NULL;
    return rc;
  }
  return (*out)->status;
}

int it_answers(impulse_client_t *client, const char *function,
               const char *payload, const char *want, uint32_t version) {
  impulse_response_t *r = NULL;
  int rc = it_invoke(client, function, payload, &r);
  int ok = rc == IMPULSE_S_OK && r->len == strlen(want) &&
           memcmp(r->payload, want, r->len) == 0 &&
           (version == 0 || r->version == version);
  if (rc != IMPULSE_S_OK)
    say("invoke %s '%s': %s: %s", function, payload, impulse_status_name(rc),
        r && r->error ? r->error : impulse_client_error(client));
  else if (!ok)
    say("invoke %s '%s': '%.*s' from version %u, not '%s' from version %u",
        function, payload, (int)r->len, (const char *)r->payload, r->version,
        want, version);
  impulse_response_free(r);
  return ok;
}

/* ---- CLI ----------------------------------------------------------------- */

static int append(char **buf, size_t *len, size_t *cap, const char *p,
                  size_t n) {
  if (*len + n + 1 > *cap) {
    size_t c = *cap ? *cap : 1024;
    while (c < *len + n + 1) c *= 2;
    char *b = realloc(*buf, c);
    if (b == NULL) return -1;
    *buf = b;
    *cap = c;
  }
  memcpy(*buf + *len, p, n);
  *len += n;
  (*buf)[*len] = '\0';
  return 0;
}

/* A terminal for the CLI's stdout: fds[0] the master (ours), fds[1] the
 * slave (the child's), raw so that bytes pass unchanged. Returns 0 or -1. */
static int open_pty(int fds[2]) {
  struct termios tio;
  fds[0] = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fds[0] < 0 || grantpt(fds[0]) != 0 || unlockpt(fds[0]) != 0) return -1;
  const char *name = ptsname(fds[0]);
  if (name == NULL) return -1;
  fds[1] = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fds[1] < 0 || tcgetattr(fds[1], &tio) != 0) return -1;
  cfmakeraw(&tio);
  return tcsetattr(fds[1], TCSANOW, &tio);
}

/* it_cli(), with stdout on a terminal when `tty`. */
static int run_cli(it_cli_t *res, const char *const *env,
                   const char *const *argv, int tty) {
  memset(res, 0, sizeof *res);
  const char *args[64];
  size_t n = 0;
  args[n++] = IMPULSE_BIN;
  for (size_t i = 0; argv[i] && n < (sizeof args / sizeof args[0]) - 1; i++)
    args[n++] = argv[i];
  args[n] = NULL;
  static const char *const drop[] = {"IMPULSE_ADDR", "IMPULSE_TOKEN", NULL};
  char **envp = make_env(drop, env);
  int outp[2] = {-1, -1}, errp[2] = {-1, -1};
  int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  size_t ocap = 0, ecap = 0;
  if (envp == NULL || nullfd < 0 ||
      (tty ? open_pty(outp) : pipe2(outp, O_CLOEXEC)) != 0 ||
      pipe2(errp, O_CLOEXEC) != 0) {
    say("cli: cannot set up: %s", strerror(errno));
    goto fail;
  }
  pid_t pid = fork();
  if (pid < 0) {
    say("cli: fork: %s", strerror(errno));
    goto fail;
  }
  if (pid == 0) {
    dup2(nullfd, 0);
    dup2(outp[1], 1);
    dup2(errp[1], 2);
    execve(IMPULSE_BIN, (char *const *)args, envp);
    _exit(127);
  }
  close(outp[1]);
  close(errp[1]);
  outp[1] = errp[1] = -1;
  if (append(&res->out, &res->out_len, &ocap, "", 0) != 0 ||
      append(&res->err, &res->err_len, &ecap, "", 0) != 0)
    goto kill_fail;
  uint64_t until = it_now_ms() + IT_CLI_TIMEOUT_MS;
  int killed = 0;
  struct pollfd pfd[2] = {{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
  while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
    uint64_t now = it_now_ms();
    if (now >= until) {
      say("cli: '%s' did not finish within %u ms: killed", argv[0],
          IT_CLI_TIMEOUT_MS);
      kill(pid, SIGKILL);
      killed = 1;
      break;
    }
    int r = poll(pfd, 2, (int)(until - now));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    for (int i = 0; i < 2; i++) {
      if (pfd[i].fd < 0 || pfd[i].revents == 0) continue;
      char buf[4096];
      ssize_t got = read(pfd[i].fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) { /* a terminal says EIO once the child closed it */
        close(pfd[i].fd);
        pfd[i].fd = -1;
        continue;
      }
      int a = i == 0
                  ? append(&res->out, &res->out_len, &ocap, buf, (size_t)got)
                  : append(&res->err, &res->err_len, &ecap, buf, (size_t)got);
      if (a != 0) goto kill_fail;
    }
  }
  for (int i = 0; i < 2; i++)
    if (pfd[i].fd >= 0) close(pfd[i].fd);
  outp[0] = errp[0] = -1;
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  res->status = killed          ? -1
                : WIFEXITED(st) ? WEXITSTATUS(st)
                                : 128 + WTERMSIG(st);
  free(envp);
  close(nullfd);
  return 0;
kill_fail:
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
fail:
  for (int i = 0; i < 2; i++) {
    if (outp[i] >= 0) close(outp[i]);
    if (errp[i] >= 0) close(errp[i]);
  }
  if (nullfd >= 0) close(nullfd);
  free(envp);
  it_cli_free(res);
  return -1;
}

int it_cli(it_cli_t *res, const char *const *env, const char *const *argv) {
  return run_cli(res, env, argv, 0);
}

int it_cli_tty(it_cli_t *res, const char *const *env, const char *const *argv) {
  return run_cli(res, env, argv, 1);
}

int it_cli_admin(it_cli_t *res, const it_server_t *server,
                 const char *const *argv) {
  const char *args[64];
  size_t n = 0;
  for (; argv[n] != NULL && n < sizeof args / sizeof args[0] - 5; n++)
    args[n] = argv[n];
  args[n++] = "--addr";
  args[n++] = server->addr;
  args[n++] = "--token";
  args[n++] = server->token;
  args[n] = NULL;
  return it_cli(res, NULL, args);
}

/* Runs `impulse ARGV...` as the admin and checks it exited 0; 0, or -1
 * after saying why (what it printed on stderr). */
static int cli_admin_ok(it_cli_t *res, const it_server_t *server,
                        const char *const *argv) {
  if (it_cli_admin(res, server, argv) != 0) return -1;
  if (res->status == 0) return 0;
  say("impulse %s: exit %d: %s", argv[0], res->status, res->err);
  it_cli_free(res);
  return -1;
}

char *it_describe_field(const it_server_t *server, const char *name,
                        const char *key, char *buf, size_t len) {
  it_cli_t res;
  const char *const argv[] = {"describe", name, NULL};
  if (cli_admin_ok(&res, server, argv) != 0) return NULL;
  char *value = it_line_value(res.out, key, buf, len);
  if (value == NULL)
    say("impulse describe %s: no '%s' in:\n%s", name, key, res.out);
  it_cli_free(&res);
  return value;
}

int it_describe_shows(const it_server_t *server, const char *name,
                      const char *const *fields) {
  it_cli_t res;
  const char *const argv[] = {"describe", name, NULL};
  if (cli_admin_ok(&res, server, argv) != 0) return 0;
  int all = 1;
  for (size_t i = 0; fields[i] != NULL && fields[i + 1] != NULL; i += 2) {
    char value[256];
    if (it_line_value(res.out, fields[i], value, sizeof value) == NULL ||
        strcmp(value, fields[i + 1]) != 0) {
      say("impulse describe %s: '%s' is not '%s'", name, fields[i],
          fields[i + 1]);
      all = 0;
    }
  }
  if (!all) say("impulse describe %s printed:\n%s", name, res.out);
  it_cli_free(&res);
  return all;
}

int it_lists(const it_server_t *server, const char *name) {
  it_cli_t res;
  const char *const argv[] = {"ls", NULL};
  if (cli_admin_ok(&res, server, argv) != 0) return -1;
  int listed = it_has_line_word(res.out, name);
  it_cli_free(&res);
  return listed;
}

void it_cli_free(it_cli_t *res) {
  free(res->out);
  free(res->err);
  res->out = res->err = NULL;
  res->out_len = res->err_len = 0;
}

/* ---- other programs ------------------------------------------------------ */

int it_run(const char *const *argv, const char *in, char **out, unsigned ms) {
  int st = sup_run(argv, in, out, ms, NULL);
  if (st == -ETIMEDOUT)
    fprintf(stderr, "%s: killed after %u ms\n", argv[0], ms);
  return st < 0 ? -1 : st;
}

int it_have(const char *prog) {
  static const char *const dirs[] = {"/usr/bin", "/usr/local/bin"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dirs[i], prog);
    if (access(path, X_OK) == 0) return 1;
  }
  return 0;
}

/* ---- text ---------------------------------------------------------------- */

int it_metric(const it_server_t *server, const char *series, double *value) {
  int fd = it_http_connect(server);
  if (fd < 0) {
    say("/metrics: cannot connect to %s", server->http_addr);
    return -1;
  }
  static const char req[] =
      "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  int closed = 0;
  char *text = it_raw_send(fd, req, sizeof req - 1) == 0
                   ? it_raw_read_all(fd, 5000, &closed)
                   : NULL;
  close(fd);
  if (text == NULL || strncmp(text, "HTTP/1.1 200", 12) != 0) {
    say("/metrics: no 200 answer");
    free(text);
    return -1;
  }
  size_t n = strlen(series);
  for (const char *line = text; line; line = strchr(line, '\n')) {
    if (*line == '\n') line++;
    if (strncmp(line, series, n) == 0 && line[n] == ' ') {
      *value = strtod(line + n + 1, NULL);
      free(text);
      return 0;
    }
  }
  say("/metrics has no sample %s", series);
  free(text);
  return -1;
}

uint64_t it_synced_writes(const it_server_t *server) {
  double v = -1;
  assert_int_equal(it_metric(server, "impulse_store_synced_writes_total", &v),
                   0);
  return (uint64_t)v;
}

void it_expect_synced(const it_server_t *server, uint64_t before, uint64_t want,
                      const char *what) {
  uint64_t got = it_synced_writes(server) - before;
  if (got != want)
    fail_msg("%s: %llu synced store writes, expected %llu", what,
             (unsigned long long)got, (unsigned long long)want);
}

void it_require(const char *prog) {
  if (it_have(prog)) return;
  fail_msg(
      "%s is not installed: this test needs it (`make deps`, "
      "scripts/install-deps.sh, installs it)",
      prog);
}

/* Tests skipped by it_skip(), read by TEST_MAIN's exit status: a counter
 * of the test program, which runs its tests one at a time. */
int it_skipped;

void it_skip(const char *why) {
  say("skipped: %s", why);
  it_skipped++;
  skip();
}

char *it_last_word(const char *s, char *buf, size_t len) {
  size_t end = strlen(s);
  while (end > 0 && (s[end - 1] == ' ' || s[end - 1] == '\n' ||
                     s[end - 1] == '\t' || s[end - 1] == '\r'))
    end--;
  size_t start = end;
  while (start > 0 && s[start - 1] != ' ' && s[start - 1] != '\n' &&
         s[start - 1] != '\t')
    start--;
  snprintf(buf, len, "%.*s", (int)(end - start), s + start);
  return buf;
}

char *it_line_value(const char *text, const char *prefix, char *buf,
                    size_t len) {
  size_t pl = strlen(prefix);
  for (const char *line = text; line && *line;) {
    const char *eol = strchr(line, '\n');
    size_t ll = eol ? (size_t)(eol - line) : strlen(line);
    if (ll >= pl && strncmp(line, prefix, pl) == 0) {
      const char *v = line + pl;
      while (v < line + ll && (*v == ' ' || *v == '\t')) v++;
      snprintf(buf, len, "%.*s", (int)(line + ll - v), v);
      return buf;
    }
    line = eol ? eol + 1 : NULL;
  }
  return NULL;
}

int it_has_line_word(const char *text, const char *word) {
  size_t wl = strlen(word);
  for (const char *line = text; line && *line;) {
    const char *eol = strchr(line, '\n');
    if (strncmp(line, word, wl) == 0 && (line[wl] == ' ' || line[wl] == '\t' ||
                                         line[wl] == '\n' || line[wl] == '\0'))
      return 1;
    line = eol ? eol + 1 : NULL;
  }
  return 0;
}

/* ---- raw protocol -------------------------------------------------------- */

/* A blocking TCP connection to 127.0.0.1:port, or -1. */
static int connect_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int it_raw_connect(const it_server_t *server) {
  return connect_port(server->port);
}

int it_http_connect(const it_server_t *server) {
  return server->http_port > 0 ? connect_port(server->http_port) : -1;
}

int it_raw_send(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return (errno == EPIPE || errno == ECONNRESET) ? 1 : -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int it_raw_send_env(int fd, const Impulse__Envelope *env) {
  imp_buf_t b = {0};
  int rc = imp_frame_append(&b, env, IMP_DEFAULT_MAX_FRAME);
  if (rc == 0) rc = it_raw_send(fd, b.data, b.len);
  imp_buf_free(&b);
  return rc;
}

char *it_raw_read_all(int fd, unsigned ms, int *closed) {
  size_t len = 0, cap = 4096;
  char *buf = malloc(cap + 1);
  uint64_t until = it_now_ms() + ms;
  *closed = 0;
  while (buf != NULL) {
    uint64_t now = it_now_ms();
    if (now >= until) break;
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, (int)(until - now));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (len == cap) {
      char *b = realloc(buf, cap * 2 + 1);
      if (b == NULL) {
        free(buf);
        return NULL;
      }
      buf = b;
      cap *= 2;
    }
    ssize_t n = recv(fd, buf + len, cap - len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *closed = 1;
      break;
    }
    len += (size_t)n;
  }
  if (buf) buf[len] = '\0';
  return buf;
}

Impulse__Envelope *it_raw_read_frame(int fd, unsigned ms) {
  /* Byte by byte after the header would be slow; read the header, then
   * exactly the body, so nothing after the frame is consumed. */
  unsigned char hdr[IMP_FRAME_HEADER];
  size_t have = 0, need = sizeof hdr;
  char *body = NULL;
  uint64_t until = it_now_ms() + ms;
  Impulse__Envelope *env = NULL;
  for (int phase = 0; phase < 2; phase++) {
    while (have < need) {
      uint64_t now = it_now_ms();
      if (now >= until) goto out;
      struct pollfd p = {fd, POLLIN, 0};
      int r = poll(&p, 1, (int)(until - now));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) goto out;
      char *dst = phase == 0 ? (char *)hdr + have : body + have;
      ssize_t got = recv(fd, dst, need - have, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) goto out;
      have += (size_t)got;
    }
    if (phase == 0) {
      need = imp_frame_len((const char *)hdr);
      if (need > IMP_DEFAULT_MAX_FRAME) goto out;
      body = malloc(need ? need : 1);
      if (body == NULL) goto out;
      have = 0;
    }
  }
  env = impulse__envelope__unpack(NULL, need, (const uint8_t *)body);
out:
  free(body);
  return env;
}

Impulse__Envelope *it_raw_call(int fd, const Impulse__Envelope *env,
                               unsigned ms) {
  if (it_raw_send_env(fd, env) != 0) return NULL;
  return it_raw_read_frame(fd, ms);
}
