/* Thin-C PostgreSQL baseline: the fastest plain libpq moves rows into a table on this
 * machine, in the three shapes the project's batch path chooses between.
 *
 *   pg_limit CONNINFO single N      -> one INSERT ... ON CONFLICT DO NOTHING per row (autocommit)
 *   pg_limit CONNINFO batch N SIZE  -> SIZE rows per INSERT ... SELECT unnest($1,$2,$3)
 *   pg_limit CONNINFO copy N        -> COPY ... FROM STDIN (text)
 * Each prints "<mode>_rows_per_s X". The table bench_pg_limit_PID is dropped at the end.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void check(PGconn *c, PGresult *r, const char *what) {
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_COPY_IN) {
    fprintf(stderr, "%s: %s", what, PQerrorMessage(c));
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: see header\n"); return 2; }
  const char *mode = argv[2];
  long n = atol(argv[3]);
  PGconn *c = PQconnectdb(argv[1]);
  if (PQstatus(c) != CONNECTION_OK) { fprintf(stderr, "%s", PQerrorMessage(c)); return 1; }
  char table[64], sql[512];
  snprintf(table, sizeof table, "bench_pg_limit_%d", getpid());
  snprintf(sql, sizeof sql, "CREATE TABLE %s (campaign_id bigint, candidate_id bigint, source text, PRIMARY KEY (campaign_id, candidate_id))", table);
  PGresult *r = PQexec(c, sql); check(c, r, "create"); PQclear(r);
  double t0 = now();
  if (!strcmp(mode, "single")) {
    snprintf(sql, sizeof sql, "INSERT INTO %s VALUES ($1::bigint, $2::bigint, $3) ON CONFLICT DO NOTHING", table);
    char a[32], b[32];
    for (long i = 0; i < n; i++) {
      snprintf(a, sizeof a, "%ld", i % 7); snprintf(b, sizeof b, "%ld", i);
      const char *v[3] = {a, b, "TEARSHEETS"};
      r = PQexecParams(c, sql, 3, NULL, v, NULL, NULL, 0); check(c, r, "insert"); PQclear(r);
    }
  } else if (!strcmp(mode, "batch")) {
    long size = argc > 4 ? atol(argv[4]) : 500;
    snprintf(sql, sizeof sql, "INSERT INTO %s SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[]) ON CONFLICT DO NOTHING", table);
    size_t cap = size * 24 + 16;
    char *x = malloc(cap), *y = malloc(cap), *z = malloc(size * 12 + 16);
    for (long start = 0; start < n; start += size) {
      long end = start + size < n ? start + size : n;
      size_t px = 0, py = 0, pz = 0;
      x[px++] = '{'; y[py++] = '{'; z[pz++] = '{';
      for (long i = start; i < end; i++) {
        const char *sep = i + 1 < end ? "," : "";
        px += sprintf(x + px, "%ld%s", i % 7, sep);
        py += sprintf(y + py, "%ld%s", i, sep);
        pz += sprintf(z + pz, "TEARSHEETS%s", sep);
      }
      strcpy(x + px, "}"); strcpy(y + py, "}"); strcpy(z + pz, "}");
      const char *v[3] = {x, y, z};
      r = PQexecParams(c, sql, 3, NULL, v, NULL, NULL, 0); check(c, r, "batch"); PQclear(r);
    }
  } else {
    snprintf(sql, sizeof sql, "COPY %s FROM STDIN", table);
    r = PQexec(c, sql); check(c, r, "copy"); PQclear(r);
    char *buf = malloc(1 << 16); size_t len = 0;
    for (long i = 0; i < n; i++) {
      len += sprintf(buf + len, "%ld\t%ld\tTEARSHEETS\n", i % 7, i);
      if (len > (1 << 16) - 128) { PQputCopyData(c, buf, (int)len); len = 0; }
    }
    if (len) PQputCopyData(c, buf, (int)len);
    PQputCopyEnd(c, NULL);
    while ((r = PQgetResult(c))) { check(c, r, "copy end"); PQclear(r); }
  }
  double dt = now() - t0;
  printf("%s_rows_per_s %.0f\n", mode, n / dt);
  snprintf(sql, sizeof sql, "DROP TABLE %s", table);
  r = PQexec(c, sql); PQclear(r);
  PQfinish(c);
  return 0;
}
