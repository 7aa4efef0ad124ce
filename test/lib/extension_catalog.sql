-- Every object of extension settle in this database, one line each, with
-- its definition: what an upgraded database must share with a fresh install
-- (test/scripts/upgrade.sh).  No OIDs, only names and definitions.
WITH ext AS (SELECT e.oid FROM pg_extension e WHERE e.extname = 'settle'),
member AS (
    SELECT d.classid, d.objid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
described AS (
    -- functions: definition, owner's privileges, comment
    SELECT 'function ' || p.oid::regprocedure::text AS object,
           pg_get_functiondef(p.oid) || ' acl=' || coalesce(p.proacl::text, '') ||
           ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '') AS definition
      FROM member m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
     WHERE p.prokind <> 'a'
    UNION ALL
    -- relations: kind, options, privileges, RLS, comment, view definition
    SELECT c.relkind::text || ' ' || c.oid::regclass::text,
           coalesce(c.reloptions::text, '') || ' acl=' || coalesce(c.relacl::text, '') ||
           ' rls=' || c.relrowsecurity || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '') ||
           CASE WHEN c.relkind = 'v' THEN ' view=' || pg_get_viewdef(c.oid) ELSE '' END
      FROM member m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
    UNION ALL
    -- columns of member tables and views
    SELECT 'column ' || c.oid::regclass::text || '.' || a.attname,
           a.attnum || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull ||
           ' identity=' || a.attidentity::text || ' default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '') ||
           ' comment=' || coalesce(col_description(c.oid, a.attnum), '')
      FROM member m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
    UNION ALL
    -- constraints, indexes, triggers and policies of member tables
    SELECT 'constraint ' || c.oid::regclass::text || '.' || k.conname, pg_get_constraintdef(k.oid)
      FROM member m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
      JOIN pg_constraint k ON k.conrelid = c.oid
    UNION ALL
    SELECT 'index ' || i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
      FROM member m JOIN pg_index i ON m.classid = 'pg_class'::regclass AND i.indrelid = m.objid
    UNION ALL
    SELECT 'trigger ' || c.oid::regclass::text || '.' || t.tgname, pg_get_triggerdef(t.oid)
      FROM member m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
      JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT 'policy ' || c.oid::regclass::text || '.' || p.polname,
           p.polcmd::text || ' ' || coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' ' ||
           coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
      FROM member m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
      JOIN pg_policy p ON p.polrelid = c.oid
    UNION ALL
    -- types and domains (with their constraints), schemas
    SELECT 'type ' || format_type(t.oid, NULL),
           t.typtype::text || ' ' || coalesce(format_type(t.typbasetype, t.typtypmod), '') || ' ' ||
           coalesce((SELECT string_agg(pg_get_constraintdef(k.oid), ' ' ORDER BY k.conname)
                       FROM pg_constraint k WHERE k.contypid = t.oid), '')
      FROM member m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
    UNION ALL
    SELECT 'schema ' || n.nspname, coalesce(n.nspacl::text, '') || ' comment=' || coalesce(obj_description(n.oid, 'pg_namespace'), '')
      FROM member m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
    UNION ALL
    -- anything else the extension owns, by its description
    SELECT 'other ' || pg_describe_object(m.classid, m.objid, 0), ''
      FROM member m
     WHERE m.classid NOT IN ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_type'::regclass, 'pg_namespace'::regclass))
SELECT object || ' :: ' || regexp_replace(definition, '\s+', ' ', 'g') FROM described ORDER BY object, definition;
