-- Issue #29, item 5: the funding advice's solver takes the whole queue
-- (credits, wires, FX pairs): settle._topup_solve has seven more arguments.
DROP FUNCTION settle._topup_solve(integer, bigint[], boolean[], integer[], integer[], bigint[], double precision[],
                                  double precision);
