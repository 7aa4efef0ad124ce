/*
 * settle_errors.h -- the SQLSTATEs settle raises.
 *
 * Class "SE" is settle's own.  Every validation rule has its own code, so a
 * client can branch on the SQLSTATE alone; docs/ERRORS.md is the table.
 * Codes are a public interface: never renumber, only add.  Codes raised from
 * SQL (src/sql) are defined here too, so that this file, docs/ERRORS.md and
 * the code agree; test/scripts/sqlstates.sh fails when they do not.
 */
#ifndef SETTLE_ERRORS_H
#define SETTLE_ERRORS_H

#define SE(c3, c4, c5) MAKE_SQLSTATE('S', 'E', c3, c4, c5)

/* field syntax */
#define ERRCODE_SETTLE_NULL_FIELD			SE('0','0','1')
#define ERRCODE_SETTLE_EMPTY_IDENTIFIER		SE('0','0','2')
#define ERRCODE_SETTLE_IDENTIFIER_TOO_LONG	SE('0','0','3')
#define ERRCODE_SETTLE_IDENTIFIER_CHARS		SE('0','0','4')
/* amount */
#define ERRCODE_SETTLE_AMOUNT_NOT_POSITIVE	SE('0','1','0')
#define ERRCODE_SETTLE_AMOUNT_NOT_FINITE	SE('0','1','1')
#define ERRCODE_SETTLE_AMOUNT_DECIMALS		SE('0','1','2')
#define ERRCODE_SETTLE_AMOUNT_ABOVE_BOUND	SE('0','1','3')
#define ERRCODE_SETTLE_AMOUNT_SYNTAX		SE('0','1','4')
#define ERRCODE_SETTLE_CONVERTED_ABOVE_BOUND SE('0','1','5')
#define ERRCODE_SETTLE_CONVERTED_TO_ZERO	SE('0','1','6')
/* currency */
#define ERRCODE_SETTLE_CURRENCY_SYNTAX		SE('0','2','0')
#define ERRCODE_SETTLE_CURRENCY_UNKNOWN		SE('0','2','1')
#define ERRCODE_SETTLE_FX_RATE_MISSING		SE('0','2','2')
/* accounts and participants */
#define ERRCODE_SETTLE_ACCOUNT_UNKNOWN		SE('0','3','0')
#define ERRCODE_SETTLE_ACCOUNT_INACTIVE		SE('0','3','1')
#define ERRCODE_SETTLE_ACCOUNT_CURRENCY		SE('0','3','2')
#define ERRCODE_SETTLE_SAME_ACCOUNT			SE('0','3','3')
#define ERRCODE_SETTLE_ACCOUNT_NOT_COUNTERPARTY SE('0','3','4')
#define ERRCODE_SETTLE_PARTICIPANT_UNKNOWN	SE('0','4','0')
#define ERRCODE_SETTLE_PARTICIPANT_INACTIVE SE('0','4','1')
/* who may submit */
#define ERRCODE_SETTLE_NOT_OWN_ACCOUNT		SE('0','3','5')
#define ERRCODE_SETTLE_ROLE_NOT_MAPPED		SE('0','3','6')
#define ERRCODE_SETTLE_DESTINATION_REFUSED	SE('0','3','7')
/* payment options */
#define ERRCODE_SETTLE_PRIORITY_RANGE		SE('0','5','0')
#define ERRCODE_SETTLE_DEADLINE_PAST		SE('0','5','1')
/* a timestamp given as text that is not RFC 3339 with an offset (src/rfc3339.c) */
#define ERRCODE_SETTLE_TIMESTAMP_SYNTAX		SE('0','5','2')
/* an earliest settlement time that is not finite, or not before the deadline (issue #33) */
#define ERRCODE_SETTLE_NOT_BEFORE_INVALID	SE('0','5','3')
/* idempotency */
#define ERRCODE_SETTLE_IDEMPOTENCY_CONFLICT SE('0','6','0')
#define ERRCODE_SETTLE_TRANSACTION_ID_TAKEN SE('0','6','1')
/* reference data: participants, accounts, rates, fees (raised from src/sql/10_reference.sql) */
#define ERRCODE_SETTLE_PARTICIPANT_EXISTS	SE('0','7','0')
#define ERRCODE_SETTLE_ACCOUNT_EXISTS		SE('0','7','1')
#define ERRCODE_SETTLE_LIMIT_BELOW_BALANCE	SE('0','7','2')
#define ERRCODE_SETTLE_PARTICIPANT_NAME		SE('0','7','3')
#define ERRCODE_SETTLE_FX_RATE_INVALID		SE('0','7','4')
#define ERRCODE_SETTLE_WIRE_FEE_NEGATIVE	SE('0','7','5')
#define ERRCODE_SETTLE_STATUS_INVALID		SE('0','7','6')
/* bulk input */
/* linked payments (src/intake_links.c, src/sql/84_links.sql) */
#define ERRCODE_SETTLE_LINK_INVALID			SE('0','8','0')
#define ERRCODE_SETTLE_LINK_SIZE_MISMATCH	SE('0','8','1')
#define ERRCODE_SETTLE_LINK_CLOSED			SE('0','8','2')
#define ERRCODE_SETTLE_LINK_NOT_PARTY		SE('0','8','3')
#define ERRCODE_SETTLE_BULK_NOT_ARRAY		SE('0','9','0')
#define ERRCODE_SETTLE_BULK_BAD_ELEMENT		SE('0','9','1')
#define ERRCODE_SETTLE_BULK_TOO_LARGE		SE('0','9','2')
/* engine */
#define ERRCODE_SETTLE_SOLVER_FAILED		SE('1','0','0')
#define ERRCODE_SETTLE_BALANCE_OVERFLOW		SE('1','0','1')
/* SE102 (ledger imbalance) was defined but never raised: removed, never to be reused */
/* operator actions on payments (raised from src/sql/40_cycle.sql) */
#define ERRCODE_SETTLE_PAYMENT_UNKNOWN		SE('1','0','3')
#define ERRCODE_SETTLE_PAYMENT_STATE		SE('1','0','4')
#define ERRCODE_SETTLE_PARTICIPANT_NOT_ACTIVE SE('1','0','5')
/* returns (raised from src/sql/82_returns.sql) */
#define ERRCODE_SETTLE_RETURN_NOT_SETTLED	SE('1','0','6')
#define ERRCODE_SETTLE_RETURN_BEYOND_LIMIT	SE('1','0','7')
#define ERRCODE_SETTLE_RETURN_NO_REASON		SE('1','0','8')
#define ERRCODE_SETTLE_APPEND_ONLY			SE('1','1','0')
/* audit (raised from src/sql/50_audit.sql) */
#define ERRCODE_SETTLE_SEAL_ON_STANDBY		SE('1','1','1')
#define ERRCODE_SETTLE_NOT_A_DIGEST			SE('1','1','2')
/* a final payment outcome (settled, expired, failed, returned) cannot change (80_rail.sql) */
#define ERRCODE_SETTLE_OUTCOME_FINAL		SE('1','1','3')
/* the rail (raised from src/sql/80_rail.sql) */
#define ERRCODE_SETTLE_BATCH_UNKNOWN		SE('1','2','0')
#define ERRCODE_SETTLE_BATCH_NOT_AWAITING	SE('1','2','1')
#define ERRCODE_SETTLE_NO_PG_CRON			SE('1','3','0')
/* durability: an answer that could still be lost in a fail-over */
#define ERRCODE_SETTLE_NOT_DURABLE			SE('1','4','0')
/*
 * lifecycle: install and drop.  SE150 is retired since 1.2 (every database
 * gets a worker): only the frozen install scripts of 1.0 and 1.1 raise it;
 * never reuse the code.
 */
#define ERRCODE_SETTLE_WORKER_ELSEWHERE		SE('1','5','0')
#define ERRCODE_SETTLE_DROP_REFUSED			SE('1','5','1')
#define ERRCODE_SETTLE_VERSION_MISMATCH		SE('1','5','2')
#define ERRCODE_SETTLE_FENCED				SE('1','5','3')
/* archiving (raised from src/sql/48_archive.sql) */
#define ERRCODE_SETTLE_ARCHIVE_HORIZON		SE('1','5','4')
#define ERRCODE_SETTLE_ARCHIVE_UNVERIFIED	SE('1','5','5')
/* API clients of settle-gateway (raised from src/sql/83_api_clients.sql) */
#define ERRCODE_SETTLE_API_CLIENT_EXISTS	SE('1','6','0')
#define ERRCODE_SETTLE_API_CLIENT_UNKNOWN	SE('1','6','1')
#define ERRCODE_SETTLE_API_CLIENT_ID		SE('1','6','2')
/* an orphan: synchronous standbys required, too few streaming (src/sync_standby.c) */
#define ERRCODE_SETTLE_NO_SYNC_STANDBY		SE('1','7','0')
/* backpressure: intake refuses new payments while the queue is full (settle.max_queued) */
#define ERRCODE_SETTLE_QUEUE_FULL			SE('0','9','3')
/* a participant's controls (raised from src/sql/88_controls.sql, issue #33) */
#define ERRCODE_SETTLE_CONTROL_NOT_OWN		SE('1','8','0')
#define ERRCODE_SETTLE_LIMIT_SELF			SE('1','8','1')
/* queue management by the payer (raised from src/sql/89_queue.sql) */
#define ERRCODE_SETTLE_PAYMENT_NOT_QUEUED	SE('1','8','2')
#define ERRCODE_SETTLE_PAYMENT_IN_CYCLE		SE('1','8','3')
#define ERRCODE_SETTLE_QUEUE_POSITION		SE('1','8','4')
/* early warnings (raised from src/sql/88_controls.sql) */
#define ERRCODE_SETTLE_ALERT_KIND			SE('1','8','5')

#endif							/* SETTLE_ERRORS_H */
