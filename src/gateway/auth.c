/*
 * auth.c -- bearer tokens.  A token is looked up in the database
 * (settle_api_authenticate: only its SHA-256 is stored there) and the
 * answer, positive or negative, is cached for auth_ttl seconds under the
 * token's SHA-256, so that the gateway keeps no token in memory and asks the
 * database once per token and period.  The client's role, not the gateway,
 * is what the database then checks (pool.c: SET ROLE).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <libpq-fe.h>

#include "gateway.h"

#define AUTH_SLOTS 4096
#define TOKEN_MAX 256

typedef struct Slot
{
	unsigned char hash[32];
	bool		used;
	double		expires;
	AuthResult	result;
} Slot;

static Slot *slots;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void
auth_init(void)
{
	slots = calloc(AUTH_SLOTS, sizeof(Slot));
	if (!slots)
		abort();
}

static void
set_fail(AuthResult *out, int status, const char *reason)
{
	memset(out, 0, sizeof(*out));
	out->http_status = status;
	out->reason = reason;
}

void
auth_check(const char *authorization, AuthResult *out)
{
	const char *token;
	size_t		len;
	unsigned char hash[32];
	Slot	   *slot;
	double		now = gw_now();
	char		error[200];
	PGresult   *res;
	const char *params[1];
	char		tokbuf[TOKEN_MAX + 1];

	if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
	{
		set_fail(out, 401, "an Authorization: Bearer token is required");
		return;
	}
	token = authorization + 7;
	while (*token == ' ')
		token++;
	len = strlen(token);
	while (len > 0 && token[len - 1] == ' ')
		len--;
	if (len == 0 || len > TOKEN_MAX)
	{
		set_fail(out, 401, "the token is not valid");
		return;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) token[i] < 0x21 || (unsigned char) token[i] > 0x7e)
		{
			set_fail(out, 401, "the token is not valid");
			return;
		}
	memcpy(tokbuf, token, len);
	tokbuf[len] = '\0';
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, tokbuf, len, hash) != 0)
	{
		set_fail(out, 503, "cannot hash the token");
		return;
	}
	slot = &slots[(hash[0] | (hash[1] << 8)) % AUTH_SLOTS];
	pthread_mutex_lock(&lock);
	if (slot->used && slot->expires > now && memcmp(slot->hash, hash, 32) == 0)
	{
		*out = slot->result;
		pthread_mutex_unlock(&lock);
		explicit_bzero(tokbuf, sizeof(tokbuf));
		return;
	}
	pthread_mutex_unlock(&lock);

	params[0] = tokbuf;
	res = pool_control_exec("SELECT client_id, role_name, participant_id FROM settle_api_authenticate($1)",
							1, params, error, sizeof(error));
	explicit_bzero(tokbuf, sizeof(tokbuf));
	if (!res)
	{
		set_fail(out, 503, "the database cannot check the token now");
		return;
	}
	if (PQntuples(res) == 1)
	{
		memset(out, 0, sizeof(*out));
		snprintf(out->client_id, sizeof(out->client_id), "%s", PQgetvalue(res, 0, 0));
		snprintf(out->role, sizeof(out->role), "%s", PQgetvalue(res, 0, 1));
		snprintf(out->participant, sizeof(out->participant), "%s", PQgetvalue(res, 0, 2));
	}
	else
		set_fail(out, 401, "the token is not valid (unknown or revoked)");
	PQclear(res);

	pthread_mutex_lock(&lock);
	memcpy(slot->hash, hash, 32);
	slot->used = true;
	slot->expires = gw_now() + gw_config.auth_ttl;
	slot->result = *out;
	pthread_mutex_unlock(&lock);
}
