-- churn_warning install script, part 980 (0.3.0): the warning board as
-- chart specs.  Each chart is a Vega-Lite (v6) spec with its data inlined,
-- aggregated here from the product's views, so that a BI tool that renders
-- Vega-Lite (or the offline HTML board built by scripts/board.sh) shows the
-- same numbers as the views.  Every function runs with the caller's rights
-- (SECURITY INVOKER): a chart whose view the caller may not read becomes a
-- note saying so.  Charts that know the customer's store (store_col of the
-- pipeline) carry a parameter "store" next to "zone"; the reasons of the
-- warnings (churn.reason) have a chart of their own.

-- The charts of the board, in board order.
CREATE FUNCTION churn.board_chart_list()
    RETURNS TABLE (ord int, chart text, title text, reads text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    VALUES (1, 'call_today', 'Customers to call today', 'churn.open_alerts, churn.retention_plan'),
           (2, 'sla', 'Open alerts by SLA status', 'churn.open_alerts'),
           (3, 'stores', 'Open alerts per store and zone', 'churn.alerts_by_store, churn.current_warnings'),
           (4, 'sla_stores', 'SLA per store', 'churn.sla_breaches'),
           (5, 'zones', 'Warnings today by zone and lifecycle', 'churn.current_warnings'),
           (6, 'reasons', 'Warnings by reason', 'churn.current_warnings'),
           (7, 'over_time', 'Warnings by zone and level over time', 'churn.pipeline_runs, churn.tier_changes, churn.current_warnings'),
           (8, 'flows', 'Tier flows between two dates', 'churn.pipeline_runs, churn.tier_changes, churn.current_warnings'),
           (9, 'funnel', 'Outcome funnel of the alerts', 'churn.outcome_funnel'),
           (10, 'retention_effect', 'Retention effect: treatment against control', 'churn.retention_effect'),
           (11, 'calibration', 'Calibration (latest backtest)', 'a relation of churn.backtest rows'),
           (12, 'lift', 'Lift by decile (latest backtest)', 'a relation of churn.backtest rows'),
           (13, 'early_warning', 'Early warning against the recency baseline (latest backtest)', 'a relation of churn.backtest rows'),
           (14, 'lead_time', 'Lead time of the warnings (latest backtest)', 'a relation of churn.backtest rows')
$$;
COMMENT ON FUNCTION churn.board_chart_list() IS
    'board internal: the charts of churn.board_charts in board order, with their titles and the views they read';

-- The parts every board spec shares: schema, title, width of its container,
-- fonts legible on a phone, the data inline and the chart's metadata.
CREATE FUNCTION churn.board_spec(chart text, pipeline text, title text, subtitle text, description text,
                                 height int, data jsonb, body jsonb, meta jsonb DEFAULT '{}')
    RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.jsonb_build_object(
               '$schema', 'https://vega.github.io/schema/vega-lite/v6.json',
               'title', pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('text', $3, 'subtitle', $4)),
               'description', $5,
               'width', 'container',
               'height', $6,
               'autosize', pg_catalog.jsonb_build_object('type', 'fit-x', 'contains', 'padding'),
               'data', pg_catalog.jsonb_build_object('values', coalesce($7, '[]'::jsonb)),
               'usermeta', pg_catalog.jsonb_build_object('chart', $1, 'pipeline', $2) OPERATOR(pg_catalog.||) $9,
               'config', $c${"font": "system-ui, -apple-system, 'Segoe UI', Roboto, 'Liberation Sans', Arial, sans-serif",
                           "title": {"anchor": "start", "fontSize": 16, "subtitleFontSize": 12,
                                     "subtitleColor": "#555555", "offset": 8},
                           "axis": {"labelFontSize": 12, "titleFontSize": 12, "titleFontWeight": "normal",
                                    "titleColor": "#333333", "labelColor": "#333333", "labelLimit": 220},
                           "axisQuantitative": {"tickCount": 5, "labelSeparation": 6},
                           "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "bottom",
                                      "direction": "horizontal", "columns": 4, "labelLimit": 120},
                           "text": {"fontSize": 12},
                           "view": {"stroke": null}}$c$::jsonb)
           OPERATOR(pg_catalog.||) $8
$$;
COMMENT ON FUNCTION churn.board_spec(text, text, text, text, text, int, jsonb, jsonb, jsonb) IS
    'board internal: a Vega-Lite spec from the parts every board chart shares and the chart''s own body';

-- A chart that has nothing to draw: the reason as its only mark, broken
-- into lines of at most 44 characters so that it fits a phone.
CREATE FUNCTION churn.board_note(chart text, pipeline text, title text, note text)
    RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.board_spec($1, $2, $3, NULL, $4, 16 OPERATOR(pg_catalog.+) 18 OPERATOR(pg_catalog.*) pg_catalog.jsonb_array_length(coalesce(l.lines, '[]')),
                            pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('note', l.lines)),
                            $b${"mark": {"type": "text", "align": "left", "baseline": "top", "fontSize": 13, "lineHeight": 18,
                                          "color": "#555555", "x": 0, "y": 8},
                                 "encoding": {"text": {"field": "note", "type": "nominal"}}}$b$::jsonb,
                            pg_catalog.jsonb_build_object('note', $4))
    FROM (SELECT pg_catalog.jsonb_agg(pg_catalog.btrim(m[1]) ORDER BY n) AS lines
          FROM pg_catalog.regexp_matches($4, '(\S.{0,43}(?=\s|$)|\S{44})', 'g') WITH ORDINALITY r(m, n)) l
$$;
COMMENT ON FUNCTION churn.board_note(text, text, text, text) IS
    'board internal: the spec of a chart that has nothing to draw, with the reason as its only mark';

-- The rows of the latest backtest stored in a relation of churn.backtest's
-- columns, read with the caller's rights.  A column "pipeline" keeps the
-- rows of that pipeline; a column "stored_at" keeps the latest ones.
CREATE FUNCTION churn.board_backtest_rows(backtest regclass, pipeline text)
    RETURNS TABLE (section text, label text, bin int, metric text, value float8, n bigint)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cols text[];
    missing text;
    cond text := 'true';
BEGIN
    SELECT pg_catalog.array_agg(a.attname::text) INTO cols FROM pg_catalog.pg_attribute a
    WHERE a.attrelid OPERATOR(pg_catalog.=) backtest AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    SELECT pg_catalog.string_agg(c, ', ') INTO missing
    FROM pg_catalog.unnest(ARRAY['section', 'label', 'bin', 'metric', 'value', 'n']) c
    WHERE NOT c OPERATOR(pg_catalog.=) ANY (coalesce(cols, '{}'));
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'backtest relation % has no column %', backtest, missing
            USING ERRCODE = 'undefined_column',
                  HINT = 'Store the rows of churn.backtest: CREATE TABLE t AS SELECT now() AS stored_at, * FROM churn.backtest(...).';
    END IF;
    IF 'pipeline' OPERATOR(pg_catalog.=) ANY (cols) THEN
        cond := 'b.pipeline::text OPERATOR(pg_catalog.=) $1';
    END IF;
    IF 'stored_at' OPERATOR(pg_catalog.=) ANY (cols) THEN
        cond := pg_catalog.format('%s AND b.stored_at OPERATOR(pg_catalog.=) (SELECT pg_catalog.max(b.stored_at) FROM %s b WHERE %s)',
                                  cond, backtest, cond);
    END IF;
    RETURN QUERY EXECUTE pg_catalog.format(
        'SELECT b.section::text, b.label::text, b.bin::int, b.metric::text, b.value::float8, b.n::bigint FROM %s b WHERE %s',
        backtest, cond) USING pipeline;
END
$$;
COMMENT ON FUNCTION churn.board_backtest_rows(regclass, text) IS
    'board internal: the latest backtest rows (section, label, bin, metric, value, n) of a relation, for one pipeline when it has a pipeline column';

-- One chart of the board: its Vega-Lite spec with the data inline.
CREATE FUNCTION churn.board_chart(pipeline text, chart text, from_date date DEFAULT NULL, to_date date DEFAULT NULL,
                                  backtest regclass DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p         text := $1;
    c         text := $2;
    title     text;
    as_of     date;
    data      jsonb;
    meta      jsonb := '{}';
    sub       text;
    why       text;
    first_day date;
    last_day  date;
    from_d    date;
    to_d      date;
    n         bigint;
    overdue   bigint;
    zone_param constant jsonb := $z${"name": "zone", "value": "all",
        "bind": {"input": "select", "options": ["all", "red", "yellow", "blue", "none"], "name": "zone "}}$z$;
    zone_filter constant jsonb := $z${"filter": "zone == 'all' || datum.zone == zone"}$z$;
    -- the store filter: set by the page (or a BI tool) to a store of usermeta.stores of chart "stores"
    store_param constant jsonb := $z${"name": "store", "value": "all"}$z$;
    store_filter constant jsonb := $z${"filter": "store == 'all' || datum.store == store"}$z$;
    has_store boolean;
    code_scale constant jsonb := $z${"domain": ["R1", "R2", "R3", "Y1", "Y2", "Y3", "Y4", "B1", "B2", "N0"],
        "range": ["#7f0000", "#c62828", "#ef5350", "#bf360c", "#ef6c00", "#ffa726", "#ffd180", "#0d47a1", "#64b5f6", "#bdbdbd"]}$z$;
    code_order constant jsonb := '["R1", "R2", "R3", "Y1", "Y2", "Y3", "Y4", "B1", "B2", "N0"]';
    zone_order constant jsonb := '["red", "yellow", "blue", "none"]';
BEGIN
    IF p IS NULL OR c IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT l.title INTO title FROM churn.board_chart_list() l WHERE l.chart OPERATOR(pg_catalog.=) c;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown board chart "%"', c USING ERRCODE = 'invalid_parameter_value',
            HINT = 'The charts: ' OPERATOR(pg_catalog.||)
                   (SELECT pg_catalog.string_agg(l.chart, ', ' ORDER BY l.ord) FROM churn.board_chart_list() l) OPERATOR(pg_catalog.||) '.';
    END IF;
    SELECT s.as_of INTO as_of FROM churn.pipeline_status s WHERE s.pipeline OPERATOR(pg_catalog.=) p;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline "%" does not exist', p USING ERRCODE = 'undefined_object',
            HINT = 'Pipelines are listed in churn.pipeline_status (a role sees the pipelines it owns; churn_reader sees all).';
    END IF;
    meta := pg_catalog.jsonb_build_object('as_of', as_of);

    IF c OPERATOR(pg_catalog.=) 'zones' THEN
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('zone', g.zone, 'level', g.level, 'code', g.code,
                                                                  'lifecycle', g.lifecycle, 'store', g.store, 'customers', g.customers)
                                    ORDER BY g.level, g.code, g.lifecycle, g.store),
               pg_catalog.sum(g.customers), pg_catalog.bool_or(g.store IS NOT NULL)
          INTO data, n, has_store
        FROM (SELECT w.zone, w.level, w.code, coalesce(w.lifecycle, 'unknown') AS lifecycle, w.store::text AS store,
                     pg_catalog.count(*) AS customers
              FROM churn.current_warnings w WHERE w.pipeline OPERATOR(pg_catalog.=) p GROUP BY 1, 2, 3, 4, 5) g;
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, 'No warnings yet: the pipeline has not been refreshed (churn.refresh or the worker).');
        END IF;
        SELECT meta OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('customers', n, 'by_zone',
                   pg_catalog.jsonb_object_agg(z.zone, coalesce(
                       (SELECT pg_catalog.sum((e OPERATOR(pg_catalog.->>) 'customers')::bigint)
                        FROM pg_catalog.jsonb_array_elements(data) e
                        WHERE e OPERATOR(pg_catalog.->>) 'zone' OPERATOR(pg_catalog.=) z.zone), 0)))
          INTO meta
        FROM pg_catalog.unnest(ARRAY['red', 'yellow', 'blue', 'none']) z(zone);
        RETURN churn.board_spec(c, p, title, pg_catalog.format('%s customers as of %s%s', n, as_of, CASE WHEN has_store THEN '' ELSE ', all stores (no store_col)' END),
            'Customers of the pipeline by warning zone (red: call, yellow: promotion, blue: reactivation, none: no warning), split by lifecycle stage. Lost customers are never red or yellow. The store filter keeps the customers of one store.',
            220, data,
            pg_catalog.jsonb_build_object(
                'params', pg_catalog.jsonb_build_array(zone_param, store_param),
                'transform', pg_catalog.jsonb_build_array(zone_filter, store_filter,
                    $t${"calculate": "indexof(['new', 'active', 'lapsing', 'lost', 'unknown'], datum.lifecycle)", "as": "lifecycle_order"}$t$::jsonb),
                'encoding', pg_catalog.jsonb_build_object('y', pg_catalog.jsonb_build_object(
                    'field', 'zone', 'type', 'nominal', 'sort', zone_order, 'title', NULL,
                    'axis', pg_catalog.jsonb_build_object('labelFontSize', 13))),
                'layer', $l$[
                  {"mark": {"type": "bar", "tooltip": true},
                   "encoding": {
                     "x": {"aggregate": "sum", "field": "customers", "type": "quantitative", "title": "customers",
                           "axis": {"format": ",~f"}},
                     "color": {"field": "lifecycle", "type": "nominal", "title": "lifecycle",
                               "scale": {"domain": ["new", "active", "lapsing", "lost"],
                                         "range": ["#7e57c2", "#43a047", "#fb8c00", "#757575"]}},
                     "order": {"field": "lifecycle_order", "type": "quantitative"},
                     "tooltip": [{"field": "zone", "type": "nominal"}, {"field": "lifecycle", "type": "nominal"},
                                 {"aggregate": "sum", "field": "customers", "type": "quantitative", "title": "customers", "format": ","}]}},
                  {"transform": [{"aggregate": [{"op": "sum", "field": "customers", "as": "total"}], "groupby": ["zone"]}],
                   "mark": {"type": "text", "align": "left", "dx": 4, "fontWeight": "bold"},
                   "encoding": {"x": {"field": "total", "type": "quantitative"},
                                "text": {"field": "total", "type": "quantitative", "format": ","}}}]$l$::jsonb),
            meta);
    END IF;

    IF c OPERATOR(pg_catalog.=) 'over_time' THEN
        -- counts after the last run of each day, back from today's snapshot
        -- through the tier changes recorded since
        WITH runs AS (
            SELECT r.as_of AS day, pg_catalog.max(r.run_id) AS last_run FROM churn.pipeline_runs r
            WHERE r.pipeline OPERATOR(pg_catalog.=) p AND r.status OPERATOR(pg_catalog.=) 'succeeded' GROUP BY 1
        ), cur AS (
            SELECT w.code, pg_catalog.count(*) AS n FROM churn.current_warnings w
            WHERE w.pipeline OPERATOR(pg_catalog.=) p GROUP BY 1
        ), moves AS (
            SELECT m.run_id, m.code, pg_catalog.sum(m.d) AS d
            FROM (SELECT t.run_id, t.to_code AS code, 1 AS d FROM churn.tier_changes t WHERE t.pipeline OPERATOR(pg_catalog.=) p
                  UNION ALL
                  SELECT t.run_id, t.from_code, -1 FROM churn.tier_changes t WHERE t.pipeline OPERATOR(pg_catalog.=) p) m
            GROUP BY 1, 2
        ), codes AS (
            SELECT l.code, l.zone, l.level FROM churn.tier_code_list() l WHERE l.code OPERATOR(pg_catalog.<>) 'N0'
        ), g AS (
            SELECT runs.day, codes.code, codes.zone, codes.level,
                   coalesce((SELECT cur.n FROM cur WHERE cur.code OPERATOR(pg_catalog.=) codes.code), 0)
                   OPERATOR(pg_catalog.-) coalesce((SELECT pg_catalog.sum(moves.d) FROM moves
                                          WHERE moves.code OPERATOR(pg_catalog.=) codes.code
                                            AND moves.run_id OPERATOR(pg_catalog.>) runs.last_run), 0) AS customers
            FROM runs CROSS JOIN codes
        )
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('day', g.day, 'zone', g.zone, 'level', g.level,
                                                                  'code', g.code, 'customers', g.customers)
                                    ORDER BY g.day, g.code),
               pg_catalog.min(g.day), pg_catalog.max(g.day)
          INTO data, first_day, last_day
        FROM g;
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, 'No refresh yet: the first refresh of the pipeline starts this history.');
        END IF;
        RETURN churn.board_spec(c, p, title,
            pg_catalog.format('customers per code after the last refresh of each day, %s to %s', first_day, last_day),
            'Warned customers (red, yellow, blue zones; zone none left out) after the last successful refresh of each day, rebuilt from today''s snapshot and the tier changes kept for the pipeline''s run_retention.',
            260, data,
            pg_catalog.jsonb_build_object(
                'params', pg_catalog.jsonb_build_array(zone_param),
                'transform', pg_catalog.jsonb_build_array(zone_filter,
                    $t${"calculate": "indexof(['R1', 'R2', 'R3', 'Y1', 'Y2', 'Y3', 'Y4', 'B1', 'B2'], datum.code)", "as": "code_order"}$t$::jsonb),
                'mark', $m${"type": "bar", "tooltip": true}$m$::jsonb,
                'encoding', pg_catalog.jsonb_build_object(
                    'x', $x${"field": "day", "type": "ordinal", "timeUnit": "yearmonthdate", "title": "day (as_of of the last refresh that day)",
                             "axis": {"format": "%b %d", "labelAngle": 0, "labelOverlap": "greedy"}}$x$::jsonb
                         OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('scale', pg_catalog.jsonb_build_object(
                             'paddingInner', 0.2,
                             -- a few days: narrow bars in the middle, not one bar across the chart
                             'paddingOuter', greatest(0.1, (8 OPERATOR(pg_catalog.-) pg_catalog.jsonb_array_length(data) OPERATOR(pg_catalog./) 9) OPERATOR(pg_catalog./) 2.0))),
                    'y', $y${"aggregate": "sum", "field": "customers", "type": "quantitative", "title": "customers",
                             "axis": {"format": ",~f"}}$y$::jsonb,
                    'color', pg_catalog.jsonb_build_object('field', 'code', 'type', 'nominal', 'title', 'zone and level',
                                                           'scale', pg_catalog.jsonb_build_object(
                                                               'domain', (code_scale OPERATOR(pg_catalog.->) 'domain') OPERATOR(pg_catalog.-) 9,
                                                               'range', (code_scale OPERATOR(pg_catalog.->) 'range') OPERATOR(pg_catalog.-) 9),
                                                           'legend', pg_catalog.jsonb_build_object('columns', 5)),
                    'order', $o${"field": "code_order", "type": "quantitative", "sort": "descending"}$o$::jsonb,
                    'tooltip', $t$[{"field": "day", "type": "temporal", "timeUnit": "yearmonthdate", "title": "day"},
                                   {"field": "code", "type": "nominal"}, {"field": "zone", "type": "nominal"},
                                   {"aggregate": "sum", "field": "customers", "type": "quantitative", "title": "customers", "format": ","}]$t$::jsonb)),
            meta OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('first_day', first_day, 'last_day', last_day));
    END IF;

    IF c OPERATOR(pg_catalog.=) 'flows' THEN
        SELECT pg_catalog.min(r.as_of), pg_catalog.max(r.as_of) INTO first_day, last_day FROM churn.pipeline_runs r
        WHERE r.pipeline OPERATOR(pg_catalog.=) p AND r.status OPERATOR(pg_catalog.=) 'succeeded';
        IF last_day IS NULL THEN
            RETURN churn.board_note(c, p, title, 'No refresh yet: tier flows need at least one refresh.');
        END IF;
        to_d := coalesce($4, last_day);
        from_d := coalesce($3, to_d OPERATOR(pg_catalog.-) 7);
        IF from_d OPERATOR(pg_catalog.>) to_d THEN
            RAISE EXCEPTION 'from_date % is after to_date %', from_d, to_d USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- a customer's code at day D: the from_code of their first change by a
        -- run after the last run of D; else their code today
        WITH lr AS (
            SELECT coalesce(pg_catalog.max(r.run_id) FILTER (WHERE r.as_of OPERATOR(pg_catalog.<=) from_d), 0) AS rf,
                   coalesce(pg_catalog.max(r.run_id) FILTER (WHERE r.as_of OPERATOR(pg_catalog.<=) to_d), 0) AS rt
            FROM churn.pipeline_runs r WHERE r.pipeline OPERATOR(pg_catalog.=) p AND r.status OPERATOR(pg_catalog.=) 'succeeded'
        ), tc AS (
            SELECT t.customer_id, t.run_id, t.at, t.from_code FROM churn.tier_changes t, lr
            WHERE t.pipeline OPERATOR(pg_catalog.=) p AND t.run_id OPERATOR(pg_catalog.>) lr.rf
        ), f AS (
            SELECT DISTINCT ON (tc.customer_id) tc.customer_id, tc.from_code FROM tc ORDER BY tc.customer_id, tc.run_id, tc.at
        ), t AS (
            SELECT DISTINCT ON (tc.customer_id) tc.customer_id, tc.from_code FROM tc, lr
            WHERE tc.run_id OPERATOR(pg_catalog.>) lr.rt ORDER BY tc.customer_id, tc.run_id, tc.at
        ), x AS (
            SELECT coalesce(f.from_code, w.code) AS from_code, coalesce(t.from_code, w.code) AS to_code
            FROM churn.current_warnings w
            LEFT JOIN f ON f.customer_id OPERATOR(pg_catalog.=) w.customer_id
            LEFT JOIN t ON t.customer_id OPERATOR(pg_catalog.=) w.customer_id
            WHERE w.pipeline OPERATOR(pg_catalog.=) p
        )
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'from_code', g.from_code, 'to_code', g.to_code, 'customers', g.customers,
                   'from_zone', churn.tier_code_zone(g.from_code), 'to_zone', churn.tier_code_zone(g.to_code),
                   'moved', g.from_code OPERATOR(pg_catalog.<>) g.to_code) ORDER BY g.from_code, g.to_code),
               pg_catalog.sum(g.customers) FILTER (WHERE g.from_code OPERATOR(pg_catalog.<>) g.to_code)
          INTO data, n
        FROM (SELECT x.from_code, x.to_code, pg_catalog.count(*) AS customers FROM x GROUP BY 1, 2) g;
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, 'No customers in the snapshot yet.');
        END IF;
        RETURN churn.board_spec(c, p, title,
            pg_catalog.format('%s customers changed code between %s and %s', coalesce(n, 0), from_d, to_d),
            pg_catalog.format('Each cell counts the customers whose code was the row''s after the last refresh on or before %s and the column''s after the last refresh on or before %s. N0: no warning, or not scored yet (a new customer). The diagonal holds the customers who ended where they started.', from_d, to_d),
            340, data,
            pg_catalog.jsonb_build_object(
                'params', pg_catalog.jsonb_build_array(zone_param),
                'transform', pg_catalog.jsonb_build_array(
                    $t${"filter": "zone == 'all' || datum.from_zone == zone || datum.to_zone == zone"}$t$::jsonb),
                'encoding', pg_catalog.jsonb_build_object(
                    'x', pg_catalog.jsonb_build_object('field', 'to_code', 'type', 'ordinal', 'sort', code_order,
                                                       'title', pg_catalog.format('code on %s', to_d),
                                                       'axis', pg_catalog.jsonb_build_object('orient', 'top', 'labelAngle', 0)),
                    'y', pg_catalog.jsonb_build_object('field', 'from_code', 'type', 'ordinal', 'sort', code_order,
                                                       'title', pg_catalog.format('code on %s', from_d))),
                'layer', $l$[
                  {"mark": {"type": "rect", "tooltip": true, "stroke": "#ffffff", "strokeWidth": 1},
                   "encoding": {"color": {"field": "customers", "type": "quantitative", "title": "customers",
                                          "scale": {"type": "log", "scheme": "blues"},
                                          "legend": {"direction": "horizontal", "gradientLength": 160}},
                                "tooltip": [{"field": "from_code", "title": "from"}, {"field": "to_code", "title": "to"},
                                            {"field": "customers", "type": "quantitative", "format": ","}]}},
                  {"mark": {"type": "text", "fontSize": 11},
                   "encoding": {"text": {"field": "customers", "type": "quantitative", "format": ".3~s"},
                                "color": {"condition": {"test": "datum.customers > 300", "value": "#ffffff"},
                                          "value": "#222222"}}}]$l$::jsonb),
            meta OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('from_date', from_d, 'to_date', to_d, 'moved', coalesce(n, 0)));
    END IF;

    IF c OPERATOR(pg_catalog.=) 'call_today' OR c OPERATOR(pg_catalog.=) 'sla' OR c OPERATOR(pg_catalog.=) 'funnel' THEN
        IF NOT pg_catalog.has_table_privilege('churn.open_alerts', 'SELECT') THEN
            RETURN churn.board_note(c, p, title,
                'Needs SELECT on churn.open_alerts (GRANT churn_reader TO ' OPERATOR(pg_catalog.||) current_user OPERATOR(pg_catalog.||) ').');
        END IF;
    END IF;

    IF c OPERATOR(pg_catalog.=) 'call_today' THEN
        -- the most value kept per contact first: churn.retention_plan's
        -- expected value; p_churn x annual value when the plan cannot be read
        sub := 'expected value kept per contact (churn.retention_plan)';
        BEGIN
            WITH k AS (
                SELECT o.alert_id, o.customer_id, o.code, o.zone, o.action, o.channel, o.hours_left, o.due_at, o.overdue,
                       o.p_churn, o.annual_value, r.expected_saved_value AS value, r.uplift_source,
                       w.reason::text AS reason, w.store::text AS store
                FROM churn.retention_plan(p, 1e300) r
                JOIN churn.open_alerts o ON o.alert_id OPERATOR(pg_catalog.=) r.alert_id
                LEFT JOIN churn.current_warnings w ON w.pipeline OPERATOR(pg_catalog.=) p
                                                   AND w.customer_id::text OPERATOR(pg_catalog.=) o.customer_id
                WHERE o.pipeline OPERATOR(pg_catalog.=) p AND o.status OPERATOR(pg_catalog.=) 'open'
            ), rk AS (
                SELECT k.*, pg_catalog.row_number() OVER (PARTITION BY k.zone ORDER BY k.value DESC, k.alert_id) AS zone_rank FROM k
            )
            SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'alert_id', rk.alert_id, 'customer_id', rk.customer_id, 'code', rk.code, 'zone', rk.zone,
                       'label', pg_catalog.concat_ws(' · ', rk.customer_id, rk.code,
                                                    CASE WHEN rk.overdue
                                                         THEN pg_catalog.format('overdue %s h', pg_catalog.round((-rk.hours_left)::numeric, 1))
                                                         ELSE pg_catalog.format('%s h left', pg_catalog.round(rk.hours_left::numeric, 1)) END),
                       'action', rk.action, 'channel', rk.channel, 'reason', rk.reason, 'store', rk.store,
                       'value', pg_catalog.round(rk.value::numeric, 2),
                       'p_churn', pg_catalog.round(rk.p_churn::numeric, 3),
                       'annual_value', pg_catalog.round(rk.annual_value::numeric, 2), 'uplift_source', rk.uplift_source,
                       'hours_left', pg_catalog.round(rk.hours_left::numeric, 1), 'due_at', rk.due_at,
                       'sla_status', CASE WHEN rk.overdue THEN 'overdue'
                                          WHEN rk.hours_left OPERATOR(pg_catalog.<=) 24 THEN 'due within 24 h'
                                          ELSE 'due later' END,
                       'sla_text', CASE WHEN rk.overdue
                                        THEN pg_catalog.format('overdue %s h', pg_catalog.round((-rk.hours_left)::numeric, 1))
                                        ELSE pg_catalog.format('%s h left', pg_catalog.round(rk.hours_left::numeric, 1)) END)
                   ORDER BY rk.value DESC, rk.alert_id)
              INTO data
            FROM rk WHERE rk.zone_rank OPERATOR(pg_catalog.<=) 15;
        EXCEPTION WHEN insufficient_privilege OR null_value_not_allowed THEN
            why := SQLERRM;
        END;
        IF why IS NOT NULL THEN
            sub := 'expected loss p_churn × annual value (retention plan unavailable)';
            WITH rk AS (
                SELECT o.*, o.p_churn OPERATOR(pg_catalog.*) coalesce(o.annual_value, 0) AS value,
                       w.reason::text AS reason, w.store::text AS store,
                       pg_catalog.row_number() OVER (PARTITION BY o.zone ORDER BY o.p_churn OPERATOR(pg_catalog.*) coalesce(o.annual_value, 0) DESC, o.alert_id) AS zone_rank
                FROM churn.open_alerts o
                LEFT JOIN churn.current_warnings w ON w.pipeline OPERATOR(pg_catalog.=) p
                                                   AND w.customer_id::text OPERATOR(pg_catalog.=) o.customer_id
                WHERE o.pipeline OPERATOR(pg_catalog.=) p AND o.status OPERATOR(pg_catalog.=) 'open'
            )
            SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'alert_id', rk.alert_id, 'customer_id', rk.customer_id, 'code', rk.code, 'zone', rk.zone,
                       'label', pg_catalog.concat_ws(' · ', rk.customer_id, rk.code,
                                                    CASE WHEN rk.overdue
                                                         THEN pg_catalog.format('overdue %s h', pg_catalog.round((-rk.hours_left)::numeric, 1))
                                                         ELSE pg_catalog.format('%s h left', pg_catalog.round(rk.hours_left::numeric, 1)) END),
                       'action', rk.action, 'channel', rk.channel, 'reason', rk.reason, 'store', rk.store,
                       'value', pg_catalog.round(rk.value::numeric, 2),
                       'p_churn', pg_catalog.round(rk.p_churn::numeric, 3),
                       'annual_value', pg_catalog.round(rk.annual_value::numeric, 2), 'uplift_source', NULL,
                       'hours_left', pg_catalog.round(rk.hours_left::numeric, 1), 'due_at', rk.due_at,
                       'sla_status', CASE WHEN rk.overdue THEN 'overdue'
                                          WHEN rk.hours_left OPERATOR(pg_catalog.<=) 24 THEN 'due within 24 h'
                                          ELSE 'due later' END,
                       'sla_text', CASE WHEN rk.overdue
                                        THEN pg_catalog.format('overdue %s h', pg_catalog.round((-rk.hours_left)::numeric, 1))
                                        ELSE pg_catalog.format('%s h left', pg_catalog.round(rk.hours_left::numeric, 1)) END)
                   ORDER BY rk.value DESC, rk.alert_id)
              INTO data
            FROM rk WHERE rk.zone_rank OPERATOR(pg_catalog.<=) 15;
        END IF;
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, 'Nobody to call: no open alert worth a contact.');
        END IF;
        RETURN churn.board_spec(c, p, title, 'the 15 with most ' OPERATOR(pg_catalog.||) sub,
            'Open alerts not contacted yet, the most value kept per contact first: p_churn × annual value × uplift − cost of the action (churn.retention_plan; uplift measured against the control group once it is large enough, else the playbook''s prior). The reason is why the customer is at risk (service, price, silence, frequency, lost; churn.current_warnings.reason). The SLA clock is the time left to the contact deadline of the playbook. Up to 15 per zone are kept; the store filter keeps one store''s.'
            OPERATOR(pg_catalog.||) CASE WHEN why IS NOT NULL THEN ' Here the retention plan could not be read (' OPERATOR(pg_catalog.||) why OPERATOR(pg_catalog.||) '), so the ranking is by p_churn × annual value.' ELSE '' END,
            400, data,
            pg_catalog.jsonb_build_object(
                'params', pg_catalog.jsonb_build_array(zone_param, store_param),
                'transform', pg_catalog.jsonb_build_array(zone_filter, store_filter,
                    $t${"window": [{"op": "row_number", "as": "rank"}], "sort": [{"field": "value", "order": "descending"}, {"field": "alert_id"}]}$t$::jsonb,
                    $t${"filter": "datum.rank <= 15"}$t$::jsonb),
                'encoding', $e${"y": {"field": "label", "type": "nominal", "title": null,
                                      "sort": {"field": "rank", "op": "min", "order": "ascending"},
                                      "axis": {"labelLimit": 200,
                                               "labelColor": {"condition": {"test": "indexof(datum.label, 'overdue') >= 0", "value": "#b71c1c"},
                                                              "value": "#333333"}}}}$e$::jsonb,
                'layer', pg_catalog.jsonb_build_array(
                    pg_catalog.jsonb_build_object('mark', $m${"type": "bar", "tooltip": true}$m$::jsonb,
                        'encoding', pg_catalog.jsonb_build_object(
                            'x', pg_catalog.jsonb_build_object('field', 'value', 'type', 'quantitative',
                                     'title', CASE WHEN why IS NULL THEN 'value kept per contact'
                                                   ELSE 'p_churn × annual value' END,
                                     'axis', pg_catalog.jsonb_build_object('format', ',~f')),
                            'color', $c${"field": "sla_status", "type": "nominal", "title": "SLA",
                                         "scale": {"domain": ["overdue", "due within 24 h", "due later"],
                                                   "range": ["#b71c1c", "#ef6c00", "#78909c"]},
                                         "legend": {"columns": 2, "labelLimit": 120}}$c$::jsonb,
                            'tooltip', $t$[{"field": "customer_id", "title": "customer"}, {"field": "code"},
                                           {"field": "reason"}, {"field": "store"}, {"field": "action"}, {"field": "channel"},
                                           {"field": "value", "type": "quantitative", "format": ",.2f", "title": "value kept"},
                                           {"field": "p_churn", "type": "quantitative", "format": ".3f"},
                                           {"field": "annual_value", "type": "quantitative", "format": ",.0f", "title": "annual value"},
                                           {"field": "sla_text", "title": "SLA clock"},
                                           {"field": "due_at", "type": "temporal", "format": "%Y-%m-%d %H:%M", "title": "contact by"}]$t$::jsonb)))),
            meta OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('ranked_by', CASE WHEN why IS NULL THEN 'retention_plan' ELSE 'p_churn_x_annual_value' END,
                                                                      'plan_error', why));
    END IF;

    IF c OPERATOR(pg_catalog.=) 'sla' THEN
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('zone', g.zone, 'sla_status', g.sla_status,
                                                                  'status_order', g.ord, 'alerts', g.alerts) ORDER BY g.zone, g.ord),
               pg_catalog.sum(g.alerts), pg_catalog.sum(g.alerts) FILTER (WHERE g.sla_status OPERATOR(pg_catalog.=) 'overdue')
          INTO data, n, overdue
        FROM (SELECT o.zone, s.sla_status, s.ord, pg_catalog.count(*) AS alerts
              FROM churn.open_alerts o
              CROSS JOIN LATERAL (SELECT CASE WHEN o.status OPERATOR(pg_catalog.=) 'contacted' THEN 'contacted'
                                              WHEN o.overdue THEN 'overdue'
                                              WHEN o.hours_left OPERATOR(pg_catalog.<=) 24 THEN 'due within 24 h'
                                              ELSE 'due later' END AS sla_status,
                                         CASE WHEN o.status OPERATOR(pg_catalog.=) 'contacted' THEN 4
                                              WHEN o.overdue THEN 1
                                              WHEN o.hours_left OPERATOR(pg_catalog.<=) 24 THEN 2 ELSE 3 END AS ord) s
              WHERE o.pipeline OPERATOR(pg_catalog.=) p GROUP BY 1, 2, 3) g;
        meta := pg_catalog.jsonb_build_object('as_of', as_of, 'open_alerts', coalesce(n, 0),
                                              'overdue', coalesce(overdue, 0));
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, 'No open alerts: every alert of the pipeline is closed, or none was raised yet.');
        END IF;
        RETURN churn.board_spec(c, p, title, pg_catalog.format('%s open alerts, %s overdue', n, coalesce(overdue, 0)),
            'Open and contacted alerts of the pipeline (the control group is held out): overdue = not contacted by the deadline of the playbook''s SLA; due within 24 h; due later; contacted and waiting for the outcome.',
            200, data,
            pg_catalog.jsonb_build_object(
                'params', pg_catalog.jsonb_build_array(zone_param),
                'transform', pg_catalog.jsonb_build_array(zone_filter),
                'encoding', pg_catalog.jsonb_build_object('y', pg_catalog.jsonb_build_object(
                    'field', 'zone', 'type', 'nominal', 'sort', zone_order, 'title', NULL,
                    'axis', pg_catalog.jsonb_build_object('labelFontSize', 13))),
                'layer', $l$[
                  {"mark": {"type": "bar", "tooltip": true},
                   "encoding": {
                     "x": {"aggregate": "sum", "field": "alerts", "type": "quantitative", "title": "open alerts",
                           "axis": {"format": ",~f"}},
                     "color": {"field": "sla_status", "type": "nominal", "title": "SLA status",
                               "scale": {"domain": ["overdue", "due within 24 h", "due later", "contacted"],
                                         "range": ["#b71c1c", "#ef6c00", "#90a4ae", "#2e7d32"]},
                               "legend": {"columns": 2, "labelLimit": 140}},
                     "order": {"field": "status_order", "type": "quantitative"},
                     "tooltip": [{"field": "zone"}, {"field": "sla_status", "title": "SLA status"},
                                 {"aggregate": "sum", "field": "alerts", "type": "quantitative", "title": "alerts", "format": ","}]}},
                  {"transform": [{"aggregate": [{"op": "sum", "field": "alerts", "as": "total"}], "groupby": ["zone"]}],
                   "mark": {"type": "text", "align": "left", "dx": 4, "fontWeight": "bold"},
                   "encoding": {"x": {"field": "total", "type": "quantitative"},
                                "text": {"field": "total", "type": "quantitative", "format": ","}}}]$l$::jsonb),
            meta);
    END IF;

    IF c OPERATOR(pg_catalog.=) 'funnel' THEN
        IF NOT pg_catalog.has_table_privilege('churn.outcome_funnel', 'SELECT') THEN
            RETURN churn.board_note(c, p, title,
                'Needs SELECT on churn.outcome_funnel (GRANT churn_reader TO ' OPERATOR(pg_catalog.||) current_user OPERATOR(pg_catalog.||) ').');
        END IF;
        WITH s AS (
            SELECT f.zone, st.stage, st.ord, st.n
            FROM churn.outcome_funnel f
            CROSS JOIN LATERAL (VALUES
                ('raised', 1, f.raised),
                ('contacted', 2, f.contacted),
                ('retained', 3, f.retained),
                ('churned', 4, f.churned),
                ('dismissed', 5, f.dismissed),
                ('still open', 6, f.still_open)) st(stage, ord, n)
            WHERE f.pipeline OPERATOR(pg_catalog.=) p
        )
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('zone', s.zone, 'stage', s.stage, 'stage_order', s.ord,
                                                                  'alerts', s.n) ORDER BY s.zone, s.ord),
               pg_catalog.jsonb_object_agg(s.stage, s.total)
          INTO data, meta
        FROM (SELECT s.*, pg_catalog.sum(s.n) OVER (PARTITION BY s.stage) AS total FROM s) s;
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, 'No alerts raised by this pipeline yet.');
        END IF;
        meta := pg_catalog.jsonb_build_object('as_of', as_of, 'stages', meta);
        RETURN churn.board_spec(c, p, title,
            pg_catalog.format('%s alerts raised, %s contacted, %s retained, %s churned',
                              meta OPERATOR(pg_catalog.#>>) '{stages,raised}', meta OPERATOR(pg_catalog.#>>) '{stages,contacted}',
                              meta OPERATOR(pg_catalog.#>>) '{stages,retained}', meta OPERATOR(pg_catalog.#>>) '{stages,churned}'),
            'What became of the alerts handed to staff (treatment arm; the control group is held out), from churn.outcome_funnel: raised; contacted at any time (also those closed since); closed as retained or churned (a refresh closes alerts from the purchase data, contacted or not); dismissed; still open or waiting for the outcome. Shares are of the alerts raised.',
            230, data,
            pg_catalog.jsonb_build_object(
                'params', pg_catalog.jsonb_build_array(zone_param),
                'transform', $t$[{"filter": "zone == 'all' || datum.zone == zone"},
                                 {"aggregate": [{"op": "sum", "field": "alerts", "as": "alerts"}], "groupby": ["stage", "stage_order"]},
                                 {"joinaggregate": [{"op": "max", "field": "alerts", "as": "raised"}]},
                                 {"calculate": "datum.raised > 0 ? datum.alerts / datum.raised : 0", "as": "share"},
                                 {"calculate": "format(datum.alerts, ',') + ' (' + format(datum.share, '.0%') + ')'", "as": "label"}]$t$::jsonb,
                'encoding', $e${"y": {"field": "stage", "type": "nominal", "title": null,
                                      "sort": {"field": "stage_order", "op": "min", "order": "ascending"}, "axis": {"labelLimit": 200}}}$e$::jsonb,
                'layer', $l$[
                  {"mark": {"type": "bar", "tooltip": true},
                   "encoding": {"x": {"field": "alerts", "type": "quantitative", "title": "alerts", "axis": {"format": ",~f"}},
                                "color": {"field": "stage", "type": "nominal", "legend": null,
                                          "scale": {"domain": ["raised", "contacted", "retained", "churned", "dismissed", "still open"],
                                                    "range": ["#455a64", "#1e88e5", "#2e7d32", "#c62828", "#bdbdbd", "#90a4ae"]}},
                                "tooltip": [{"field": "stage"}, {"field": "alerts", "type": "quantitative", "format": ","},
                                            {"field": "share", "type": "quantitative", "format": ".1%", "title": "share of raised"}]}},
                  {"mark": {"type": "text", "align": "left", "dx": 4},
                   "encoding": {"x": {"field": "alerts", "type": "quantitative"}, "text": {"field": "label"}}}]$l$::jsonb),
            meta);
    END IF;

    IF c OPERATOR(pg_catalog.=) 'stores' THEN
        SELECT pg_catalog.count(*), pg_catalog.count(w.store) INTO n, overdue
        FROM churn.current_warnings w WHERE w.pipeline OPERATOR(pg_catalog.=) p;
        IF n OPERATOR(pg_catalog.=) 0 THEN
            RETURN churn.board_note(c, p, title, 'No warnings yet: the pipeline has not been refreshed (churn.refresh or the worker).');
        END IF;
        IF overdue OPERATOR(pg_catalog.=) 0 THEN
            RETURN churn.board_note(c, p, title, 'No stores: the pipeline has no store_col (churn.create_pipeline(..., store_col => ''store_id'')), so every chart covers all its customers.');
        END IF;
        -- open alerts (open and contacted, treatment arm) per store and zone;
        -- warned customers when no alert is open or the caller may not read the alerts
        IF pg_catalog.has_table_privilege('churn.alerts_by_store', 'SELECT') THEN
            SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('store', g.store, 'zone', g.zone, 'n', g.n) ORDER BY g.store, g.zone)
              INTO data
            FROM (SELECT coalesce(a.store, '(unknown)') AS store, a.zone,
                         pg_catalog.sum(a.open OPERATOR(pg_catalog.+) a.contacted)::bigint AS n
                  FROM churn.alerts_by_store a
                  WHERE a.pipeline OPERATOR(pg_catalog.=) p AND a.arm OPERATOR(pg_catalog.=) 'treatment'
                  GROUP BY 1, 2 HAVING pg_catalog.sum(a.open OPERATOR(pg_catalog.+) a.contacted) OPERATOR(pg_catalog.>) 0) g;
            why := 'open alerts';
        END IF;
        IF data IS NULL THEN
            SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('store', g.store, 'zone', g.zone, 'n', g.n) ORDER BY g.store, g.zone)
              INTO data
            FROM (SELECT coalesce(w.store::text, '(unknown)') AS store, w.zone, pg_catalog.count(*) AS n
                  FROM churn.current_warnings w
                  WHERE w.pipeline OPERATOR(pg_catalog.=) p AND w.zone OPERATOR(pg_catalog.<>) 'none' GROUP BY 1, 2) g;
            why := 'warned customers';
        END IF;
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, 'No open alert and no warned customer in any store.');
        END IF;
        SELECT meta OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                   'measure', why,
                   'stores', (SELECT pg_catalog.jsonb_agg(DISTINCT w.store::text) FROM churn.current_warnings w
                              WHERE w.pipeline OPERATOR(pg_catalog.=) p AND w.store IS NOT NULL),
                   'by_store', (SELECT pg_catalog.jsonb_object_agg(x.store, x.n) FROM
                                  (SELECT e OPERATOR(pg_catalog.->>) 'store' AS store, pg_catalog.sum((e OPERATOR(pg_catalog.->>) 'n')::bigint) AS n
                                   FROM pg_catalog.jsonb_array_elements(data) e GROUP BY 1) x))
          INTO meta;
        RETURN churn.board_spec(c, p, title,
            pg_catalog.format('%s %s in %s stores', (SELECT pg_catalog.sum((e OPERATOR(pg_catalog.->>) 'n')::bigint) FROM pg_catalog.jsonb_array_elements(data) e),
                              why, pg_catalog.jsonb_array_length(meta OPERATOR(pg_catalog.->) 'stores')),
            CASE WHEN why OPERATOR(pg_catalog.=) 'open alerts'
                 THEN 'Open and contacted alerts (treatment arm) per store and zone, from churn.alerts_by_store: the darker the cell, the more customers to handle. The store is the one of most of the customer''s purchases (store_col).'
                 ELSE 'Warned customers (red, yellow, blue) per store and zone, from churn.current_warnings (no open alert, or no SELECT on churn.alerts_by_store). The store is the one of most of the customer''s purchases (store_col).' END,
            least(60 OPERATOR(pg_catalog.+) 26 OPERATOR(pg_catalog.*) pg_catalog.jsonb_array_length(meta OPERATOR(pg_catalog.->) 'stores'), 520),
            data,
            pg_catalog.jsonb_build_object(
                'params', pg_catalog.jsonb_build_array(zone_param, store_param),
                'transform', pg_catalog.jsonb_build_array(zone_filter, store_filter,
                    $t${"joinaggregate": [{"op": "max", "field": "n", "as": "max_n"}]}$t$::jsonb, $t${"calculate": "isValid(toNumber(datum.store)) ? toNumber(datum.store) : 1e15", "as": "store_order"}$t$::jsonb),
                'encoding', pg_catalog.jsonb_build_object(
                    'x', pg_catalog.jsonb_build_object('field', 'zone', 'type', 'nominal', 'sort', zone_order, 'title', NULL,
                                                       'axis', pg_catalog.jsonb_build_object('orient', 'top', 'labelAngle', 0)),
                    'y', $y${"field": "store", "type": "nominal", "title": "store",
                             "sort": {"field": "store_order", "op": "min", "order": "ascending"}}$y$::jsonb),
                'layer', pg_catalog.jsonb_build_array(
                    pg_catalog.jsonb_build_object('mark', $m${"type": "rect", "tooltip": true, "stroke": "#ffffff", "strokeWidth": 1}$m$::jsonb,
                        'encoding', pg_catalog.jsonb_build_object(
                            'color', pg_catalog.jsonb_build_object('field', 'n', 'type', 'quantitative', 'title', why,
                                                                   'scale', $s${"scheme": "oranges"}$s$::jsonb),
                            'tooltip', pg_catalog.jsonb_build_array($t${"field": "store"}$t$::jsonb, $t${"field": "zone"}$t$::jsonb,
                                pg_catalog.jsonb_build_object('field', 'n', 'type', 'quantitative', 'format', ',', 'title', why)))),
                    $l${"mark": {"type": "text", "fontSize": 12},
                        "encoding": {"text": {"field": "n", "type": "quantitative", "format": ","},
                                     "color": {"condition": {"test": "datum.n > 0.6 * datum.max_n", "value": "#ffffff"}, "value": "#212121"}}}$l$::jsonb)),
            meta);
    END IF;

    IF c OPERATOR(pg_catalog.=) 'sla_stores' THEN
        IF NOT pg_catalog.has_table_privilege('churn.sla_breaches', 'SELECT') THEN
            RETURN churn.board_note(c, p, title,
                'Needs SELECT on churn.sla_breaches (GRANT churn_reader TO ' OPERATOR(pg_catalog.||) current_user OPERATOR(pg_catalog.||) ').');
        END IF;
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('store', g.store, 'status', st.status, 'status_order', st.ord,
                                                                  'alerts', st.n, 'median_hours', pg_catalog.round(g.median_hours_to_contact::numeric, 1))
                                    ORDER BY g.store, st.ord) FILTER (WHERE st.n OPERATOR(pg_catalog.>) 0),
               pg_catalog.bool_or(g.store IS NOT NULL)
          INTO data, has_store
        FROM churn.sla_breaches g
        CROSS JOIN LATERAL (VALUES ('overdue now', 1, g.overdue_now), ('contacted late', 2, g.contacted_late),
                                   ('contacted in time', 3, g.contacted_in_time)) st(status, ord, n)
        WHERE g.pipeline OPERATOR(pg_catalog.=) p;
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, 'No alert handed to staff yet: nothing overdue or contacted.');
        END IF;
        IF NOT has_store THEN
            RETURN churn.board_note(c, p, title, 'No stores: the pipeline has no store_col, so the SLA is the one of the whole pipeline (chart "Open alerts by SLA status").');
        END IF;
        SELECT meta OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                   'overdue_now', pg_catalog.sum(g.overdue_now), 'contacted_late', pg_catalog.sum(g.contacted_late),
                   'contacted_in_time', pg_catalog.sum(g.contacted_in_time))
          INTO meta FROM churn.sla_breaches g WHERE g.pipeline OPERATOR(pg_catalog.=) p;
        RETURN churn.board_spec(c, p, title,
            pg_catalog.format('%s overdue now, %s contacted late, %s in time', meta OPERATOR(pg_catalog.->>) 'overdue_now',
                              meta OPERATOR(pg_catalog.->>) 'contacted_late', meta OPERATOR(pg_catalog.->>) 'contacted_in_time'),
            'Per store, from churn.sla_breaches (treatment arm): open alerts past their contact deadline now, alerts contacted after the deadline and alerts contacted in time; the tooltip has the median hours from raising to contact.',
            least(80 OPERATOR(pg_catalog.+) 26 OPERATOR(pg_catalog.*) (SELECT pg_catalog.count(DISTINCT e OPERATOR(pg_catalog.->>) 'store') FROM pg_catalog.jsonb_array_elements(data) e)::int, 520),
            data,
            pg_catalog.jsonb_build_object(
                'params', pg_catalog.jsonb_build_array(store_param),
                'transform', pg_catalog.jsonb_build_array(store_filter, $t${"calculate": "isValid(toNumber(datum.store)) ? toNumber(datum.store) : 1e15", "as": "store_order"}$t$::jsonb),
                'encoding', $e${"y": {"field": "store", "type": "nominal", "title": "store",
                                      "sort": {"field": "store_order", "op": "min", "order": "ascending"}}}$e$::jsonb,
                'layer', $l$[
                  {"mark": {"type": "bar", "tooltip": true},
                   "encoding": {
                     "x": {"aggregate": "sum", "field": "alerts", "type": "quantitative", "title": "alerts", "axis": {"format": ",~f"}},
                     "color": {"field": "status", "type": "nominal", "title": null,
                               "scale": {"domain": ["overdue now", "contacted late", "contacted in time"],
                                         "range": ["#b71c1c", "#ef6c00", "#2e7d32"]}},
                     "order": {"field": "status_order", "type": "quantitative"},
                     "tooltip": [{"field": "store"}, {"field": "status"},
                                 {"aggregate": "sum", "field": "alerts", "type": "quantitative", "title": "alerts", "format": ","},
                                 {"aggregate": "max", "field": "median_hours", "type": "quantitative", "title": "median hours to contact"}]}}]$l$::jsonb),
            meta);
    END IF;

    IF c OPERATOR(pg_catalog.=) 'reasons' THEN
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('zone', g.zone, 'reason', g.reason, 'store', g.store, 'customers', g.n)
                                    ORDER BY g.zone, g.reason, g.store),
               pg_catalog.sum(g.n)
          INTO data, n
        FROM (SELECT w.zone, coalesce(w.reason::text, 'no rule') AS reason, w.store::text AS store, pg_catalog.count(*) AS n
              FROM churn.current_warnings w
              WHERE w.pipeline OPERATOR(pg_catalog.=) p AND w.zone OPERATOR(pg_catalog.<>) 'none' GROUP BY 1, 2, 3) g;
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, 'No warned customer yet: the pipeline has not been refreshed, or nobody is red, yellow or blue.');
        END IF;
        SELECT meta OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('warned', n, 'by_reason', pg_catalog.jsonb_object_agg(x.reason, x.cnt))
          INTO meta
        FROM (SELECT e OPERATOR(pg_catalog.->>) 'reason' AS reason, pg_catalog.sum((e OPERATOR(pg_catalog.->>) 'customers')::bigint) AS cnt
              FROM pg_catalog.jsonb_array_elements(data) e GROUP BY 1) x;
        RETURN churn.board_spec(c, p, title, pg_catalog.format('%s warned customers by why they are at risk', n),
            'Warned customers (red, yellow, blue) by zone and reason (churn.current_warnings.reason): service (bad ratings or complaints), price (spending less), silence (no contact or engagement), frequency (buying less often), lost; no rule: none of the rules fired.',
            200, data,
            pg_catalog.jsonb_build_object(
                'params', pg_catalog.jsonb_build_array(zone_param, store_param),
                'transform', pg_catalog.jsonb_build_array(zone_filter, store_filter),
                'encoding', pg_catalog.jsonb_build_object(
                    'y', pg_catalog.jsonb_build_object('field', 'zone', 'type', 'nominal', 'sort', zone_order, 'title', NULL),
                    'x', $x${"field": "reason", "type": "nominal", "title": null,
                             "sort": ["service", "price", "silence", "frequency", "lost", "no rule"],
                             "axis": {"orient": "top", "labelAngle": 0}}$x$::jsonb),
                'layer', $l$[
                  {"mark": {"type": "rect", "tooltip": true, "stroke": "#ffffff", "strokeWidth": 1},
                   "encoding": {"color": {"aggregate": "sum", "field": "customers", "type": "quantitative", "title": "customers",
                                          "scale": {"scheme": "purples"}},
                                "tooltip": [{"field": "zone"}, {"field": "reason"},
                                            {"aggregate": "sum", "field": "customers", "type": "quantitative", "title": "customers", "format": ","}]}},
                  {"mark": {"type": "text", "fontSize": 12},
                   "encoding": {"text": {"aggregate": "sum", "field": "customers", "type": "quantitative", "format": ","}}}]$l$::jsonb),
            meta);
    END IF;

    IF c OPERATOR(pg_catalog.=) 'retention_effect' THEN
        IF NOT pg_catalog.has_table_privilege('churn.retention_effect', 'SELECT') THEN
            RETURN churn.board_note(c, p, title,
                'Needs SELECT on churn.retention_effect (GRANT churn_reader TO ' OPERATOR(pg_catalog.||) current_user OPERATOR(pg_catalog.||) ').');
        END IF;
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'zone', t.zone, 'uplift', t.uplift, 'uplift_low', t.uplift_low, 'uplift_high', t.uplift_high,
                   'treatment_rate', t.retention_rate, 'treatment_closed', t.closed,
                   'control_rate', k.retention_rate, 'control_closed', k.closed, 'value_kept', pg_catalog.round(t.value_kept::numeric, 2),
                   'label', pg_catalog.format('%s%s pp [%s, %s]', CASE WHEN t.uplift OPERATOR(pg_catalog.>=) 0 THEN '+' ELSE '' END,
                                              pg_catalog.round((100 OPERATOR(pg_catalog.*) t.uplift)::numeric, 1),
                                              pg_catalog.round((100 OPERATOR(pg_catalog.*) t.uplift_low)::numeric, 1),
                                              pg_catalog.round((100 OPERATOR(pg_catalog.*) t.uplift_high)::numeric, 1)))
                   ORDER BY pg_catalog.array_position(ARRAY['red', 'yellow', 'blue'], t.zone))
                   FILTER (WHERE t.uplift IS NOT NULL),
               pg_catalog.count(k.zone)
          INTO data, n
        FROM churn.retention_effect t
        LEFT JOIN churn.retention_effect k ON k.pipeline OPERATOR(pg_catalog.=) t.pipeline AND k.zone OPERATOR(pg_catalog.=) t.zone
                                          AND k.arm OPERATOR(pg_catalog.=) 'control'
        WHERE t.pipeline OPERATOR(pg_catalog.=) p AND t.arm OPERATOR(pg_catalog.=) 'treatment';
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, CASE
                WHEN coalesce(n, 0) OPERATOR(pg_catalog.=) 0
                THEN 'No control group yet: hold one out with churn.alter_pipeline(name, control_share => 0.2) to measure the uplift.'
                ELSE 'Not measurable yet: both arms need alerts closed as retained or churned.' END);
        END IF;
        meta := meta OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('uplift', (
            SELECT pg_catalog.jsonb_object_agg(e OPERATOR(pg_catalog.->>) 'zone', e OPERATOR(pg_catalog.->) 'uplift')
            FROM pg_catalog.jsonb_array_elements(data) e));
        RETURN churn.board_spec(c, p, title, 'uplift of the retention rate over the control group, 95% interval',
            'Per zone: the retention rate of the alerts handled by staff (treatment) minus that of the control group held out (retained / closed as retained or churned), with its 95% Newcombe interval (churn.retention_effect). An interval that does not cross 0 is a measured effect.',
            170, data,
            pg_catalog.jsonb_build_object(
                'params', pg_catalog.jsonb_build_array(zone_param),
                'transform', pg_catalog.jsonb_build_array(zone_filter),
                'encoding', pg_catalog.jsonb_build_object('y', pg_catalog.jsonb_build_object(
                    'field', 'zone', 'type', 'nominal', 'sort', zone_order, 'title', NULL,
                    'axis', pg_catalog.jsonb_build_object('labelFontSize', 13))),
                'layer', $l$[
                  {"mark": {"type": "rule", "color": "#999999", "strokeDash": [4, 3]},
                   "encoding": {"x": {"datum": 0, "type": "quantitative"}, "y": null}},
                  {"mark": {"type": "rule", "strokeWidth": 3, "color": "#1565c0"},
                   "encoding": {"x": {"field": "uplift_low", "type": "quantitative",
                                      "title": "uplift of the retention rate",
                                      "axis": {"format": "+.0%"}},
                                "x2": {"field": "uplift_high"}}},
                  {"mark": {"type": "point", "filled": true, "size": 90, "color": "#0d47a1", "tooltip": true},
                   "encoding": {"x": {"field": "uplift", "type": "quantitative"},
                                "tooltip": [{"field": "zone"}, {"field": "uplift", "format": "+.1%"},
                                            {"field": "uplift_low", "format": "+.1%", "title": "95% low"},
                                            {"field": "uplift_high", "format": "+.1%", "title": "95% high"},
                                            {"field": "treatment_rate", "format": ".1%", "title": "treatment retention"},
                                            {"field": "treatment_closed", "title": "treatment closed"},
                                            {"field": "control_rate", "format": ".1%", "title": "control retention"},
                                            {"field": "control_closed", "title": "control closed"},
                                            {"field": "value_kept", "format": ",.0f", "title": "value kept"}]}},
                  {"mark": {"type": "text", "dy": -14, "fontSize": 12},
                   "encoding": {"x": {"field": "uplift", "type": "quantitative"}, "text": {"field": "label"}}}]$l$::jsonb),
            meta);
    END IF;

    -- the backtest charts
    IF backtest IS NULL THEN
        RETURN churn.board_note(c, p, title,
            'No backtest stored: run scripts/board.sh --backtest, or pass a relation of churn.backtest rows (backtest => ...).');
    END IF;
    SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(b)) INTO data FROM churn.board_backtest_rows(backtest, p) b
    WHERE b.section OPERATOR(pg_catalog.=) ANY (ARRAY['summary', 'calibration', 'lift', 'early_warning', 'lead_time']);
    IF data IS NULL THEN
        RETURN churn.board_note(c, p, title, pg_catalog.format('The backtest relation %s holds no rows for this pipeline.', backtest));
    END IF;
    sub := (SELECT pg_catalog.format('backtest of model %s: %s customers, AUC %s, horizon %s days',
                                     pg_catalog.max(e OPERATOR(pg_catalog.->>) 'label'),
                                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'value')::float8) FILTER (WHERE e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) 'customers'),
                                     pg_catalog.round(pg_catalog.max((e OPERATOR(pg_catalog.->>) 'value')::float8) FILTER (WHERE e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) 'auc')::numeric, 3),
                                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'value')::float8) FILTER (WHERE e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) 'horizon_days'))
            FROM pg_catalog.jsonb_array_elements(data) e WHERE e OPERATOR(pg_catalog.->>) 'section' OPERATOR(pg_catalog.=) 'summary');
    meta := meta OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('backtest', backtest::text);

    IF c OPERATOR(pg_catalog.=) 'calibration' THEN
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('bin', g.bin, 'predicted', g.predicted, 'observed', g.observed, 'n', g.n)
                                    ORDER BY g.bin) FILTER (WHERE g.predicted IS NOT NULL)
          INTO data
        FROM (SELECT (e OPERATOR(pg_catalog.->>) 'bin')::int AS bin,
                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'value')::float8) FILTER (WHERE e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) 'predicted') AS predicted,
                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'value')::float8) FILTER (WHERE e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) 'observed') AS observed,
                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'n')::bigint) AS n
              FROM pg_catalog.jsonb_array_elements(data) e
              WHERE e OPERATOR(pg_catalog.->>) 'section' OPERATOR(pg_catalog.=) 'calibration' GROUP BY 1) g;
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, 'The stored backtest has no calibration rows.');
        END IF;
        RETURN churn.board_spec(c, p, title, sub,
            'Customers of the backtest in ten bins of predicted p_churn: the mean prediction against the share that churned (early-warning label). Points on the diagonal are well calibrated; the point size is the number of customers. Rule-model scores are not probabilities.',
            300, data,
            $b${"layer": [
                  {"data": {"values": [{"x": 0, "y": 0}, {"x": 1, "y": 1}]},
                   "mark": {"type": "line", "color": "#9e9e9e", "strokeDash": [4, 3]},
                   "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}}},
                  {"mark": {"type": "line", "point": false, "color": "#1565c0"},
                   "encoding": {"x": {"field": "predicted", "type": "quantitative"}, "y": {"field": "observed", "type": "quantitative"}}},
                  {"mark": {"type": "circle", "color": "#1565c0", "opacity": 0.85, "tooltip": true},
                   "encoding": {"x": {"field": "predicted", "type": "quantitative", "title": "predicted p_churn (mean in bin)",
                                      "scale": {"domain": [0, 1]}, "axis": {"format": ".0%"}},
                                "y": {"field": "observed", "type": "quantitative", "title": "observed churn rate",
                                      "scale": {"domain": [0, 1]}, "axis": {"format": ".0%"}},
                                "size": {"field": "n", "type": "quantitative", "title": "customers", "legend": null},
                                "tooltip": [{"field": "bin"}, {"field": "predicted", "format": ".3f"},
                                            {"field": "observed", "format": ".3f"}, {"field": "n", "format": ","}]}}]}$b$::jsonb,
            meta);
    END IF;

    IF c OPERATOR(pg_catalog.=) 'lift' THEN
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('bin', g.bin, 'who', g.who, 'lift', g.lift, 'rate', g.rate,
                                                                  'cum_capture', g.cum_capture, 'n', g.n) ORDER BY g.bin, g.who)
                   FILTER (WHERE g.lift IS NOT NULL)
          INTO data
        FROM (SELECT (e OPERATOR(pg_catalog.->>) 'bin')::int AS bin,
                     CASE WHEN e OPERATOR(pg_catalog.->>) 'label' OPERATOR(pg_catalog.=) 'recency_baseline'
                          THEN 'recency baseline' ELSE 'model' END AS who,
                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'value')::float8) FILTER (WHERE e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) 'lift') AS lift,
                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'value')::float8) FILTER (WHERE e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) 'rate') AS rate,
                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'value')::float8) FILTER (WHERE e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) 'cum_capture') AS cum_capture,
                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'n')::bigint) AS n
              FROM pg_catalog.jsonb_array_elements(data) e
              WHERE e OPERATOR(pg_catalog.->>) 'section' OPERATOR(pg_catalog.=) 'lift' GROUP BY 1, 2) g;
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, 'The stored backtest has no lift rows.');
        END IF;
        RETURN churn.board_spec(c, p, title, sub,
            'Customers of the backtest in ten equal groups, the highest first: by p_churn (the model) and by days since the last purchase in usual gaps (the recency baseline). How many times the average churn rate each group has (1 = no better than calling at random).',
            260, data,
            $b${"encoding": {"x": {"field": "bin", "type": "ordinal", "title": "decile (1 = the highest 10%)",
                                   "axis": {"labelAngle": 0}},
                             "xOffset": {"field": "who", "type": "nominal", "sort": ["model", "recency baseline"]}},
                "layer": [
                  {"mark": {"type": "bar", "tooltip": true},
                   "encoding": {"y": {"field": "lift", "type": "quantitative", "title": "lift (× average churn rate)"},
                                "color": {"field": "who", "type": "nominal", "title": null,
                                          "scale": {"domain": ["model", "recency baseline"], "range": ["#1565c0", "#9e9e9e"]}},
                                "tooltip": [{"field": "who", "title": "ranked by"}, {"field": "bin", "title": "decile"},
                                            {"field": "lift", "format": ".2f"},
                                            {"field": "rate", "format": ".1%", "title": "churn rate"},
                                            {"field": "cum_capture", "format": ".1%", "title": "churners found so far"},
                                            {"field": "n", "format": ","}]}},
                  {"mark": {"type": "text", "dy": -7, "fontSize": 10},
                   "transform": [{"filter": "datum.who === 'model'"}],
                   "encoding": {"y": {"field": "lift", "type": "quantitative"},
                                "text": {"field": "lift", "type": "quantitative", "format": ".1f"}}},
                  {"mark": {"type": "rule", "color": "#9e9e9e", "strokeDash": [4, 3]},
                   "encoding": {"x": null, "xOffset": null, "y": {"datum": 1}}}]}$b$::jsonb,
            meta);
    END IF;

    IF c OPERATOR(pg_catalog.=) 'early_warning' THEN
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('measure', m.measure, 'measure_order', m.ord, 'who', m.who, 'value', m.value)
                                    ORDER BY m.ord, m.who) FILTER (WHERE m.value IS NOT NULL)
          INTO data
        FROM (SELECT v.measure, v.ord, v.who,
                     (SELECT (e OPERATOR(pg_catalog.->>) 'value')::float8 FROM pg_catalog.jsonb_array_elements(data) e
                      WHERE e OPERATOR(pg_catalog.->>) 'section' OPERATOR(pg_catalog.=) 'early_warning'
                        AND e OPERATOR(pg_catalog.->>) 'label' OPERATOR(pg_catalog.=) v.label
                        AND e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) v.metric LIMIT 1) AS value
              FROM (VALUES ('AUC (customers not lost)', 1, 'model', 'active', 'auc'),
                           ('AUC (customers not lost)', 1, 'recency baseline', 'recency_baseline', 'auc'),
                           ('precision of red + yellow', 2, 'model', 'red+yellow', 'precision'),
                           ('precision of red + yellow', 2, 'recency baseline', 'recency_baseline', 'precision'),
                           ('recall of red + yellow', 3, 'model', 'red+yellow', 'recall')) v(measure, ord, who, label, metric)) m;
        IF data IS NULL THEN
            RETURN churn.board_note(c, p, title, 'The stored backtest has no early_warning rows (a backtest of 0.3.0 has them).');
        END IF;
        RETURN churn.board_spec(c, p, title, sub,
            'Among the customers not lost at the backtest date: how well the model ranks who leaves (AUC) and how many of its red and yellow warnings were right (precision), against ranking by days since the last purchase in usual gaps (the recency baseline) at the same number of alerts.',
            240, data,
            $b${"encoding": {"y": {"field": "measure", "type": "nominal", "title": null,
                                   "sort": {"field": "measure_order", "op": "min", "order": "ascending"}},
                             "yOffset": {"field": "who", "type": "nominal", "sort": ["model", "recency baseline"]}},
                "layer": [
                  {"mark": {"type": "bar", "tooltip": true},
                   "encoding": {"x": {"field": "value", "type": "quantitative", "title": "share (0–100%)",
                                      "scale": {"domain": [0, 1]}, "axis": {"format": ".0%"}},
                                "color": {"field": "who", "type": "nominal", "title": null,
                                          "scale": {"domain": ["model", "recency baseline"], "range": ["#1565c0", "#9e9e9e"]}},
                                "tooltip": [{"field": "measure"}, {"field": "who"}, {"field": "value", "format": ".3f"}]}},
                  {"mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 11},
                   "encoding": {"x": {"field": "value", "type": "quantitative"},
                                "text": {"field": "value", "type": "quantitative", "format": ".2f"}}}]}$b$::jsonb,
            meta);
    END IF;

    IF c OPERATOR(pg_catalog.=) 'lead_time' THEN
        SELECT meta OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                   'leavers', pg_catalog.max(v) FILTER (WHERE m OPERATOR(pg_catalog.=) 'leavers'),
                   'warned_share', pg_catalog.max(v) FILTER (WHERE m OPERATOR(pg_catalog.=) 'warned_share'),
                   'warned_14_share', pg_catalog.max(v) FILTER (WHERE m OPERATOR(pg_catalog.=) 'warned_14_days_before_share'),
                   'p25', pg_catalog.max(v) FILTER (WHERE m OPERATOR(pg_catalog.=) 'p25_days'),
                   'median', pg_catalog.max(v) FILTER (WHERE m OPERATOR(pg_catalog.=) 'median_days'),
                   'p75', pg_catalog.max(v) FILTER (WHERE m OPERATOR(pg_catalog.=) 'p75_days'),
                   'dates', pg_catalog.max(v) FILTER (WHERE m OPERATOR(pg_catalog.=) 'scoring_dates'))
          INTO meta
        FROM (SELECT e OPERATOR(pg_catalog.->>) 'metric' AS m, (e OPERATOR(pg_catalog.->>) 'value')::float8 AS v
              FROM pg_catalog.jsonb_array_elements(data) e
              WHERE e OPERATOR(pg_catalog.->>) 'section' OPERATOR(pg_catalog.=) 'lead_time'
                AND e OPERATOR(pg_catalog.->>) 'label' OPERATOR(pg_catalog.=) 'red+yellow') x;
        IF meta OPERATOR(pg_catalog.->>) 'median' IS NULL THEN
            RETURN churn.board_note(c, p, title, 'The stored backtest warned no leaver, or has no lead_time rows (lookback 0).');
        END IF;
        -- a row for the model and one for the recency baseline (0.3.0 backtests have it)
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'row', x.who, 'p25', x.p25, 'median', x.median, 'p75', x.p75, 'warned_14_share', x.w14,
                   'label', pg_catalog.format('median %s days', x.median)) ORDER BY x.who OPERATOR(pg_catalog.<>) 'model')
          INTO data
        FROM (SELECT CASE WHEN e OPERATOR(pg_catalog.->>) 'label' OPERATOR(pg_catalog.=) 'red+yellow' THEN 'model'
                          ELSE 'recency baseline' END AS who,
                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'value')::float8) FILTER (WHERE e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) 'p25_days') AS p25,
                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'value')::float8) FILTER (WHERE e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) 'median_days') AS median,
                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'value')::float8) FILTER (WHERE e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) 'p75_days') AS p75,
                     pg_catalog.max((e OPERATOR(pg_catalog.->>) 'value')::float8) FILTER (WHERE e OPERATOR(pg_catalog.->>) 'metric' OPERATOR(pg_catalog.=) 'warned_14_days_before_share') AS w14
              FROM pg_catalog.jsonb_array_elements(data) e
              WHERE e OPERATOR(pg_catalog.->>) 'section' OPERATOR(pg_catalog.=) 'lead_time'
                AND e OPERATOR(pg_catalog.->>) 'label' IN ('red+yellow', 'recency_baseline')
              GROUP BY 1) x
        WHERE x.median IS NOT NULL;
        RETURN churn.board_spec(c, p, title,
            pg_catalog.format('%s%% of %s leavers warned, %s%% at least 14 days ahead',
                              pg_catalog.round((100 OPERATOR(pg_catalog.*) (meta OPERATOR(pg_catalog.->>) 'warned_share')::float8)::numeric, 0),
                              meta OPERATOR(pg_catalog.->>) 'leavers',
                              pg_catalog.round((100 OPERATOR(pg_catalog.*) (meta OPERATOR(pg_catalog.->>) 'warned_14_share')::float8)::numeric, 0)),
            'For the customers who made their last purchase in the backtest''s window (the leavers): the days from their first red or yellow warning to that last purchase, the middle half of the warned leavers as a bar and the median as a tick. Positive: warned while still buying. The recency baseline warns as many customers at each date, the most overdue first.',
            150, data,
            $b${"encoding": {"y": {"field": "row", "type": "nominal", "title": null, "sort": ["model", "recency baseline"]}},
                "layer": [
                  {"mark": {"type": "bar", "height": 26, "tooltip": true},
                   "encoding": {"x": {"field": "p25", "type": "quantitative",
                                      "title": "days from the first warning to the last purchase"},
                                "x2": {"field": "p75"},
                                "color": {"field": "row", "type": "nominal", "legend": null,
                                          "scale": {"domain": ["model", "recency baseline"], "range": ["#90caf9", "#e0e0e0"]}},
                                "tooltip": [{"field": "row", "title": "warned by"},
                                            {"field": "p25", "title": "25th percentile (days)"},
                                            {"field": "median", "title": "median (days)"},
                                            {"field": "p75", "title": "75th percentile (days)"},
                                            {"field": "warned_14_share", "format": ".0%", "title": "warned >= 14 days ahead"}]}},
                  {"mark": {"type": "tick", "color": "#0d47a1", "thickness": 3, "size": 34},
                   "encoding": {"x": {"field": "median", "type": "quantitative"}}},
                  {"mark": {"type": "rule", "color": "#9e9e9e", "strokeDash": [4, 3]},
                   "encoding": {"x": {"datum": 0}, "y": null}},
                  {"mark": {"type": "text", "dy": -22, "fontSize": 12},
                   "encoding": {"x": {"field": "median", "type": "quantitative"}, "text": {"field": "label"}}}]}$b$::jsonb,
            meta);
    END IF;
    RAISE EXCEPTION 'board chart "%" has no body', c;   -- can't happen: every listed chart has a branch
END
$$;
COMMENT ON FUNCTION churn.board_chart(text, text, date, date, regclass) IS
    'one chart of the warning board: its Vega-Lite spec with the data aggregated from the views (read with the caller''s rights), or a note when there is nothing to draw';

-- Every chart of the board, in board order.
CREATE FUNCTION churn.board_charts(pipeline text, from_date date DEFAULT NULL, to_date date DEFAULT NULL,
                                   backtest regclass DEFAULT NULL)
    RETURNS TABLE (chart text, title text, spec jsonb)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT l.chart, l.title, churn.board_chart($1, l.chart, $2, $3, $4)
    FROM churn.board_chart_list() l
    WHERE $1 IS NOT NULL
    ORDER BY l.ord
$$;
COMMENT ON FUNCTION churn.board_charts(text, date, date, regclass) IS
    'every chart of the warning board of a pipeline, in board order: chart name, title and Vega-Lite spec with its data';
