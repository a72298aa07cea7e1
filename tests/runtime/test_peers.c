/*
 * Unit tests for runtime/policy/peers.c: which connections the front doors
 * admit, per peer and in all, and that the table counts right through
 * churn (checked against a plain array).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "policy/peers.h"
#include "tests/support/test_main.h"

static imp_peer_t v4(const char *s) {
  struct sockaddr_in in;
  memset(&in, 0, sizeof in);
  in.sin_family = AF_INET;
  assert_int_equal(inet_pton(AF_INET, s, &in.sin_addr), 1);
  imp_peer_t p;
  assert_int_equal(imp_peer_from_sockaddr((struct sockaddr *)&in, &p), 0);
  return p;
}

static imp_peer_t v6(const char *s) {
  struct sockaddr_in6 in6;
  memset(&in6, 0, sizeof in6);
  in6.sin6_family = AF_INET6;
  assert_int_equal(inet_pton(AF_INET6, s, &in6.sin6_addr), 1);
  imp_peer_t p;
  assert_int_equal(imp_peer_from_sockaddr((struct sockaddr *)&in6, &p), 0);
  return p;
}

/* A peer at its cap is refused while another peer is admitted; a release
 * makes room again. */
static void test_per_peer_cap(void **state) {
  (void)state;
  imp_peers_t peers;
  imp_peers_init(&peers, 100, 3, 42);
  imp_peer_t a = v4("127.0.0.1"), b = v4("127.0.0.2");
  for (int i = 0; i < 3; i++)
    assert_int_equal(imp_peers_admit(&peers, &a), IMP_ADMIT_OK);
  assert_int_equal(imp_peers_admit(&peers, &a), IMP_ADMIT_PEER_CAP);
  assert_int_equal(imp_peers_count(&peers, &a), 3);
  assert_int_equal(imp_peers_admit(&peers, &b), IMP_ADMIT_OK);
  imp_peers_release(&peers, &a);
  assert_int_equal(imp_peers_admit(&peers, &a), IMP_ADMIT_OK);
  assert_int_equal(peers.total, 4);
  assert_int_equal(peers.used, 2);
  imp_peers_free(&peers);
}

/* The global cap applies before the per-peer one. */
static void test_global_cap(void **state) {
  (void)state;
  imp_peers_t peers;
  imp_peers_init(&peers, 2, 10, 7);
  imp_peer_t a = v4("10.0.0.1"), b = v4("10.0.0.2"), c = v4("10.0.0.3");
  assert_int_equal(imp_peers_admit(&peers, &a), IMP_ADMIT_OK);
  assert_int_equal(imp_peers_admit(&peers, &b), IMP_ADMIT_OK);
  assert_int_equal(imp_peers_admit(&peers, &c), IMP_ADMIT_GLOBAL_CAP);
  assert_int_equal(imp_peers_count(&peers, &c), 0);
  imp_peers_release(&peers, &b);
  assert_int_equal(imp_peers_count(&peers, &b), 0);
  assert_int_equal(imp_peers_admit(&peers, &c), IMP_ADMIT_OK);
  imp_peers_free(&peers);
}

/* IPv6 peers count by /64; an IPv4-mapped address is its IPv4 peer. */
static void test_addresses(void **state) {
  (void)state;
  imp_peer_t x = v6("2001:db8:1:2::1"), y = v6("2001:db8:1:2:ffff::9");
  imp_peer_t z = v6("2001:db8:1:3::1");
  assert_memory_equal(&x, &y, sizeof x);
  assert_memory_not_equal(&x, &z, sizeof x);
  imp_peer_t m = v6("::ffff:192.0.2.7"), p = v4("192.0.2.7");
  assert_memory_equal(&m, &p, sizeof m);
  char buf[64];
  assert_string_equal(imp_peer_str(&p, buf, sizeof buf), "192.0.2.7");
  assert_string_equal(imp_peer_str(&x, buf, sizeof buf), "2001:db8:1:2::/64");
  struct sockaddr sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_family = AF_UNIX;
  assert_int_equal(imp_peer_from_sockaddr(&sa, &x), -EAFNOSUPPORT);
}

/* Thousands of peers admitted and released in a pseudo-random order keep
 * the counts of a plain array (deletions move entries back in the
 * probe runs; a wrong move would lose or duplicate a peer). */
static void test_churn_matches_model(void **state) {
  (void)state;
  enum { NPEERS = 3000, STEPS = 200000 };
  static unsigned model[NPEERS];
  memset(model, 0, sizeof model);
  imp_peers_t peers;
  imp_peers_init(&peers, 1000000, 5, 0x1234567);
  uint64_t r = 88172645463325252ull;
  unsigned total = 0;
  for (int s = 0; s < STEPS; s++) {
    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    unsigned i = (unsigned)(r % NPEERS);
    imp_peer_t p;
    memset(&p, 0, sizeof p);
    p.b[10] = p.b[11] = 0xff;
    memcpy(p.b + 12, &i, sizeof i);
    if ((r >> 40) % 3 != 0) {
      int rc = imp_peers_admit(&peers, &p);
      assert_int_equal(rc, model[i] < 5 ? IMP_ADMIT_OK : IMP_ADMIT_PEER_CAP);
      if (rc == IMP_ADMIT_OK) model[i]++, total++;
    } else if (model[i] > 0) {
      imp_peers_release(&peers, &p);
      model[i]--, total--;
    }
    if (s % 20000 == 0) {
      for (unsigned k = 0; k < NPEERS; k++) {
        imp_peer_t q;
        memset(&q, 0, sizeof q);
        q.b[10] = q.b[11] = 0xff;
        memcpy(q.b + 12, &k, sizeof k);
        assert_int_equal(imp_peers_count(&peers, &q), model[k]);
      }
    }
  }
  assert_int_equal(peers.total, total);
  size_t used = 0;
  for (unsigned k = 0; k < NPEERS; k++) used += model[k] > 0;
  assert_int_equal(peers.used, used);
  imp_peers_free(&peers);
}

TEST_MAIN("unit_peers", NULL, NULL, cmocka_unit_test(test_per_peer_cap),
          cmocka_unit_test(test_global_cap), cmocka_unit_test(test_addresses),
          cmocka_unit_test(test_churn_matches_model))
