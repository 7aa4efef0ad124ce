/*
 * iso_reason.c -- SQLSTATE -> ISO 20022 status reason code
 * (ExternalStatusReason1Code): the one table (docs/ISO20022.md, "Reason
 * codes", shows the same).  Exact codes first, then classes; a refusal
 * without a closer code is NARR, its text in AddtlInf.
 */
#define _GNU_SOURCE
#include <string.h>

#include "gateway.h"

typedef struct Rule
{
	const char *sqlstate;		/* a code, or a class prefix ending in '*' */
	const char *code;
	const char *name;
} Rule;

static const Rule rules[] = {
	/* identifiers */
	{"SE002", "NARR", "Narrative"},	/* an identifier is empty */
	{"SE003", "NARR", "Narrative"},	/* longer than 128 bytes */
	{"SE004", "NARR", "Narrative"},	/* a character outside its set */
	/* amounts */
	{"SE010", "AM01", "ZeroAmount"},
	{"SE011", "AM12", "InvalidAmount"},
	{"SE012", "AM12", "InvalidAmount"},
	{"SE013", "AM02", "NotAllowedAmount"},
	{"SE014", "AM12", "InvalidAmount"},
	{"SE015", "AM02", "NotAllowedAmount"},
	{"SE016", "AM02", "NotAllowedAmount"},
	/* currencies */
	{"SE020", "AM03", "NotAllowedCurrency"},
	{"SE021", "AM03", "NotAllowedCurrency"},
	{"SE022", "AM03", "NotAllowedCurrency"},
	/* accounts and participants */
	{"SE030", "AC01", "IncorrectAccountNumber"},
	{"SE031", "AC06", "BlockedAccount"},
	{"SE032", "AM03", "NotAllowedCurrency"},
	{"SE033", "AC03", "InvalidCreditorAccountNumber"},
	{"SE034", "AC03", "InvalidCreditorAccountNumber"},
	{"SE035", "AC02", "InvalidDebtorAccountNumber"},
	{"SE036", "AG01", "TransactionForbidden"},
	{"SE037", "AC03", "InvalidCreditorAccountNumber"},
	{"SE040", "RC04", "InvalidCreditorBankIdentifier"},
	{"SE041", "AG01", "TransactionForbidden"},
	{"42501", "AG01", "TransactionForbidden"},
	/* times */
	{"SE051", "DT01", "InvalidDate"},
	{"SE052", "DT01", "InvalidDate"},
	{"SE053", "DT01", "InvalidDate"},
	/* the same identifiers for another payment */
	{"SE060", "AM05", "Duplication"},
	{"SE061", "DUPL", "DuplicatePayment"},
	/* everything else settle refuses: its message says why */
	{"SE*", "NARR", "Narrative"},
	{"22*", "NARR", "Narrative"},
};

IsoReason
iso_reason_for_sqlstate(const char *sqlstate)
{
	IsoReason	r = {"NARR", "Narrative"};

	if (!sqlstate || !*sqlstate)
		return r;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
	{
		const char *code = rules[i].sqlstate;
		size_t		n = strlen(code);

		if (code[n - 1] == '*' ? strncmp(code, sqlstate, n - 1) == 0 : strcmp(code, sqlstate) == 0)
		{
			r.code = rules[i].code;
			r.name = rules[i].name;
			return r;
		}
	}
	return r;
}
