-- What \df+ and \d+ show (src/sql/95_comments.sql): every public function,
-- every view and every view column users read has a comment.  Own database.
CREATE DATABASE settle_catalog;
\c settle_catalog
CREATE EXTENSION settle;
SELECT 'function ' || p.oid::regprocedure AS without_comment
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'settle\_%'
   AND obj_description(p.oid, 'pg_proc') IS NULL
UNION ALL
SELECT 'view ' || c.oid::regclass
  FROM pg_class c
 WHERE c.relnamespace = 'settle'::regnamespace AND c.relkind = 'v' AND obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT 'column ' || c.oid::regclass || '.' || a.attname
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'settle'::regnamespace AND c.relkind = 'v' AND col_description(c.oid, a.attnum) IS NULL
ORDER BY 1;
SELECT count(*) > 30 AS public_functions,
       count(*) FILTER (WHERE obj_description(p.oid, 'pg_proc') LIKE '%(operators)%') > 10 AS operator_functions_say_so
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'settle\_%';
\c contrib_regression
DROP DATABASE settle_catalog;
