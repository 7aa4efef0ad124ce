/*
 * major_units.h -- currency exponents, cached per backend (src/major_units.c).
 */
#ifndef SETTLE_MAJOR_UNITS_H
#define SETTLE_MAJOR_UNITS_H

/* The number of decimals of a currency code, or -1 if settle does not know it. */
extern int	settle_currency_exponent(const char *code, int len);

#endif							/* SETTLE_MAJOR_UNITS_H */
