/*
 * bank_indicators: scores banks on a set of indicators.
 *
 * Request (JSON object; unknown keys are ignored):
 *   {"strategy":"weighted","banks":["bank1","bank2"],
 *    "indicators":["liquidity","capital"]}
 * "strategy" is "average" (the default), "weighted", "max" or "min";
 * "banks" is required; "indicators" defaults to capital, asset_quality,
 * management, earnings, liquidity. At most 64 banks and 32 indicators, each
 * name 1..64 bytes, no duplicates.
 *
 * Every bank x indicator gets a deterministic score in [0, 100) from an
 * FNV-1a hash of the two names; a bank's score combines its indicator scores
 * with the strategy ("weighted" gives indicator i the weight 1/(i+1)).
 *
 * Response:
 *   {"strategy":"weighted","results":[{"bank":"bank1","score":42.17,
 *    "indicators":{"liquidity":12.30,...}},...],"best":"bank1"}
 * where "best" is the bank with the highest score (the first on a tie).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

#define MAX_BANKS 64
#define MAX_INDICATORS 32
#define MAX_NAME 64
#define MAX_DEPTH 32 /* nesting allowed in ignored values */

typedef char name_t[MAX_NAME + 1];

typedef enum { AVERAGE, WEIGHTED, MAX, MIN } strategy_t;

static const char *const strategy_names[] = {"average", "weighted", "max",
                                             "min"};

static const char *const default_indicators[] = {
    "capital", "asset_quality", "management", "earnings", "liquidity"};

typedef struct request_s {
  strategy_t strategy;
  name_t banks[MAX_BANKS];
  size_t n_banks;
  name_t indicators[MAX_INDICATORS];
  size_t n_indicators;
  bool has_indicators;
  char error[160]; /* why the request was refused */
} request_t;

/* ---- a small, bounded JSON reader ---------------------------------------- */

typedef struct cursor_s {
  const char *p;
  const char *end;
} cursor_t;

static void skip_ws(cursor_t *c) {
  while (c->p < c->end &&
         (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

/* Consumes `ch` after optional whitespace; returns whether it was there. */
static bool accept_char(cursor_t *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return true;
  }
  return false;
}

static int hex_digit(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/*
 * Reads a JSON string into out[0..cap) (NUL-terminated) when out is not NULL,
 * or skips it. Returns its length, -1 when malformed, -2 when longer than
 * cap - 1. \u escapes are accepted for ASCII only.
 */
static long read_string(cursor_t *c, char *out, size_t cap) {
  if (!accept_char(c, '"')) return -1;
  size_t len = 0;
  bool too_long = false;
  while (c->p < c->end && *c->p != '"') {
    char ch = *c->p++;
    if ((unsigned char)ch < 0x20) return -1;
    if (ch == '\\') {
      if (c->p >= c->end) return -1;
      char esc = *c->p++;
      switch (esc) {
        case '"':
        case '\\':
        case '/': ch = esc; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
          int v = 0;
          if (c->end - c->p < 4) return -1;
          for (int i = 0; i < 4; i++) {
            int d = hex_digit(*c->p++);
            if (d < 0) return -1;
            v = v * 16 + d;
          }
          if (v == 0 || v > 0x7f) return -1;
          ch = (char)v;
          break;
        }
        default: return -1;
      }
    }
    if (out != NULL) {
      if (len + 1 < cap)
        out[len] = ch;
      else
        too_long = true;
    }
    len++;
  }
  if (c->p >= c->end) return -1;
  c->p++; /* closing quote */
  if (out != NULL) out[too_long ? cap - 1 : len] = '\0';
  return too_long ? -2 : (long)len;
}

/* Skips any JSON value, with nesting bounded by MAX_DEPTH. Returns 0 or -1. */
static int skip_value(cursor_t *c) {
  int depth = 0;
  skip_ws(c);
  do {
    skip_ws(c);
    if (c->p >= c->end) return -1;
    char ch = *c->p;
    if (ch == '"') {
      if (read_string(c, NULL, 0) < 0) return -1;
    } else if (ch == '{' || ch == '[') {
      if (++depth > MAX_DEPTH) return -1;
      c->p++;
    } else if (ch == '}' || ch == ']') {
      if (depth == 0) return -1;
      depth--;
      c->p++;
    } else if (ch == ',' || ch == ':') {
      if (depth == 0) return -1;
      c->p++;
    } else {
      /* number, true, false, null: a run of plain characters */
      const char *start = c->p;
      while (c->p < c->end && ((*c->p >= '0' && *c->p <= '9') ||
                               (*c->p >= 'a' && *c->p <= 'z') || *c->p == '-' ||
                               *c->p == '+' || *c->p == '.' || *c->p == 'E'))
        c->p++;
      if (c->p == start) return -1;
    }
  } while (depth > 0);
  return 0;
}

/* Reads an array of distinct names. Returns 0, or -1 with req->error set. */
static int read_names(cursor_t *c, const char *what, name_t *names, size_t max,
                      size_t *n, request_t *req) {
  *n = 0;
  if (!accept_char(c, '[')) goto not_array;
  if (accept_char(c, ']')) return 0;
  do {
    if (*n == max) {
      snprintf(req->error, sizeof req->error, "too many %s (at most %zu)", what,
               max);
      return -1;
    }
    long len = read_string(c, names[*n], sizeof names[*n]);
    if (len == -2) {
      snprintf(req->error, sizeof req->error,
               "a name in %s is longer than %d bytes", what, MAX_NAME);
      return -1;
    }
    if (len < 0) goto not_array;
    if (len == 0) {
      snprintf(req->error, sizeof req->error, "empty name in %s", what);
      return -1;
    }
    for (size_t i = 0; i < *n; i++) {
      if (strcmp(names[i], names[*n]) == 0) {
        snprintf(req->error, sizeof req->error, "duplicate name in %s: %s",
                 what, names[i]);
        return -1;
      }
    }
    (*n)++;
  } while (accept_char(c, ','));
  if (accept_char(c, ']')) return 0;
not_array:
  snprintf(req->error, sizeof req->error, "%s must be an array of strings",
           what);
  return -1;
}

/* Parses the request. Returns 0, or -1 with req->error set. */
static int parse_request(const char *payload, size_t len, request_t *req) {
  cursor_t c = {payload, payload + len};
  bool has_banks = false;
  memset(req, 0, sizeof *req);
  req->strategy = AVERAGE;
  if (!accept_char(&c, '{')) goto malformed;
  if (!accept_char(&c, '}')) {
    do {
      char key[32];
      if (read_string(&c, key, sizeof key) == -1 || !accept_char(&c, ':'))
        goto malformed;
      if (strcmp(key, "strategy") == 0) {
        char name[16];
        long n = read_string(&c, name, sizeof name);
        if (n == -1) {
          snprintf(req->error, sizeof req->error, "strategy must be a string");
          return -1;
        }
        size_t i = 0;
        while (i < 4 && (n < 0 || strcmp(name, strategy_names[i]) != 0)) i++;
        if (i == 4) {
          snprintf(req->error, sizeof req->error,
                   "unknown strategy \"%.15s%s\" (expected average, "
                   "weighted, max or min)",
                   name, n < 0 ? "..." : "");
          return -1;
        }
        req->strategy = (strategy_t)i;
      } else if (strcmp(key, "banks") == 0) {
        if (read_names(&c, "banks", req->banks, MAX_BANKS, &req->n_banks,
                       req) != 0)
          return -1;
        has_banks = true;
      } else if (strcmp(key, "indicators") == 0) {
        if (read_names(&c, "indicators", req->indicators, MAX_INDICATORS,
                       &req->n_indicators, req) != 0)
          return -1;
        req->has_indicators = true;
      } else if (skip_value(&c) != 0) {
        goto malformed;
      }
    } while (accept_char(&c, ','));
    if (!accept_char(&c, '}')) goto malformed;
  }
  skip_ws(&c);
  if (c.p != c.end) goto malformed;
  if (!has_banks || req->n_banks == 0) {
    snprintf(req->error, sizeof req->error, "banks is required and not empty");
    return -1;
  }
  if (!req->has_indicators) {
    for (size_t i = 0;
         i < sizeof default_indicators / sizeof *default_indicators; i++)
      snprintf(req->indicators[i], sizeof req->indicators[i], "%s",
               default_indicators[i]);
    req->n_indicators = sizeof default_indicators / sizeof *default_indicators;
  }
  if (req->n_indicators == 0) {
    snprintf(req->error, sizeof req->error, "indicators must not be empty");
    return -1;
  }
  return 0;
malformed:
  snprintf(req->error, sizeof req->error,
           "payload is not a JSON object like {\"strategy\":\"weighted\","
           "\"banks\":[...],\"indicators\":[...]}");
  return -1;
}

/* ---- scoring ------------------------------------------------------------- */

/* Score in [0, 100) with two decimals, from FNV-1a over bank NUL indicator. */
static double indicator_score(const char *bank, const char *indicator) {
  uint64_t h = 14695981039346656037ull;
  for (const char *p = bank; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  h = (h ^ 0u) * 1099511628211ull;
  for (const char *p = indicator; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return (double)(h % 10000u) / 100.0;
}

static double combine(strategy_t strategy, const double *scores, size_t n) {
  double acc = strategy == MIN ? 100.0 : 0.0, weights = 0.0;
  for (size_t i = 0; i < n; i++) {
    switch (strategy) {
      case AVERAGE:
        acc += scores[i];
        weights += 1.0;
        break;
      case WEIGHTED: {
        double w = 1.0 / (double)(i + 1);
        acc += w * scores[i];
        weights += w;
        break;
      }
      case MAX:
        if (scores[i] > acc) acc = scores[i];
        break;
      case MIN:
        if (scores[i] < acc) acc = scores[i];
        break;
    }
  }
  return weights > 0.0 ? acc / weights : acc;
}

/* ---- output -------------------------------------------------------------- */

typedef struct writer_s {
  char *buf;
  size_t len;
  size_t cap;
  bool overflow;
} writer_t;

static void put(writer_t *w, const char *s, size_t n) {
  if (w->overflow || w->cap - w->len < n) {
    w->overflow = true;
    return;
  }
  memcpy(w->buf + w->len, s, n);
  w->len += n;
}

static void put_str(writer_t *w, const char *s) {
  put(w, s, strlen(s));
}

/* Writes `s` as a JSON string. */
static void put_json(writer_t *w, const char *s) {
  put(w, "\"", 1);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    char esc[8];
    if (ch == '"' || ch == '\\') {
      esc[0] = '\\';
      esc[1] = (char)ch;
      put(w, esc, 2);
    } else if (ch < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", ch);
      put(w, esc, 6);
    } else {
      put(w, (const char *)&ch, 1);
    }
  }
  put(w, "\"", 1);
}

static void put_number(writer_t *w, double v) {
  char num[32];
  int n = snprintf(num, sizeof num, "%.2f", v);
  put(w, num, (size_t)n);
}

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  size_t len;
  const char *payload = impulse_payload(ctx, &len);
  request_t *req = impulse_alloc(ctx, sizeof *req);
  if (req == NULL) return impulse_error(ctx, IMPULSE_ERROR, "out of memory");
  if (parse_request(payload, len, req) != 0)
    return impulse_error(ctx, IMPULSE_BAD_INPUT, "%s", req->error);

  /* Worst case: every name escaped to 6 bytes per character. */
  size_t name_max = 2 + 6 * MAX_NAME;
  size_t per_bank = 64 + name_max + req->n_indicators * (name_max + 16);
  writer_t w = {NULL, 0, 128 + name_max + req->n_banks * per_bank, false};
  w.buf = impulse_alloc(ctx, w.cap);
  if (w.buf == NULL) return impulse_error(ctx, IMPULSE_ERROR, "out of memory");

  double scores[MAX_INDICATORS];
  double best_score = -1.0;
  size_t best = 0;
  put_str(&w, "{\"strategy\":");
  put_json(&w, strategy_names[req->strategy]);
  put_str(&w, ",\"results\":[");
  for (size_t b = 0; b < req->n_banks; b++) {
    for (size_t i = 0; i < req->n_indicators; i++)
      scores[i] = indicator_score(req->banks[b], req->indicators[i]);
    double score = combine(req->strategy, scores, req->n_indicators);
    if (score > best_score) {
      best_score = score;
      best = b;
    }
    put_str(&w, b ? ",{\"bank\":" : "{\"bank\":");
    put_json(&w, req->banks[b]);
    put_str(&w, ",\"score\":");
    put_number(&w, score);
    put_str(&w, ",\"indicators\":{");
    for (size_t i = 0; i < req->n_indicators; i++) {
      if (i) put_str(&w, ",");
      put_json(&w, req->indicators[i]);
      put_str(&w, ":");
      put_number(&w, scores[i]);
    }
    put_str(&w, "}}");
  }
  put_str(&w, "],\"best\":");
  put_json(&w, req->banks[best]);
  put_str(&w, "}");
  if (w.overflow)
    return impulse_error(ctx, IMPULSE_ERROR,
                         "internal error: response overflow");
  return impulse_respond(ctx, w.buf, w.len);
}
