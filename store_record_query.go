package vaultstore

import (
	"slices"
	"strings"
)

// vaultColumns are the only column names a query may select or order by.
// Anything else is rejected before SQL is built: the original passed
// SetColumns straight into SELECT, so a caller-controlled string could run
// arbitrary SQL.
var vaultColumns = []string{
	COLUMN_ID,
	COLUMN_VAULT_TOKEN,
	COLUMN_VAULT_VALUE,
	COLUMN_CREATED_AT,
	COLUMN_UPDATED_AT,
	COLUMN_EXPIRES_AT,
	COLUMN_SOFT_DELETED_AT,
}

func isVaultColumn(name string) bool { return slices.Contains(vaultColumns, name) }

// recordQuery is the RecordQueryInterface returned by RecordQuery. Slices
// are copied in and out so a caller cannot change a query after validation.
type recordQuery struct {
	columns            []string
	id                 string
	idIn               []string
	token              string
	tokenIn            []string
	offset             int
	limit              int
	orderBy            string
	sortOrder          string
	countOnly          bool
	softDeletedInclude bool
	set                querySet
}

// querySet records which parameters were given.
type querySet struct {
	columns, id, idIn, token, tokenIn, offset, limit, orderBy, sortOrder, countOnly, softDeletedInclude bool
}

var _ RecordQueryInterface = (*recordQuery)(nil)

// RecordQuery returns an empty query: every live (not soft-deleted) record,
// ordered by id.
func RecordQuery() RecordQueryInterface { return &recordQuery{} }

// Validate reports the first problem with the query, matching
// ErrValidationFailed.
func (q *recordQuery) Validate() error { return validateQuery(q) }

func (q *recordQuery) GetColumns() []string { return slices.Clone(q.columns) }
func (q *recordQuery) IsColumnsSet() bool   { return q.set.columns }
func (q *recordQuery) SetColumns(columns []string) RecordQueryInterface {
	q.columns, q.set.columns = slices.Clone(columns), true
	return q
}

func (q *recordQuery) IsIDSet() bool { return q.set.id }
func (q *recordQuery) GetID() string { return q.id }
func (q *recordQuery) SetID(id string) RecordQueryInterface {
	q.id, q.set.id = id, true
	return q
}

func (q *recordQuery) IsIDInSet() bool   { return q.set.idIn }
func (q *recordQuery) GetIDIn() []string { return slices.Clone(q.idIn) }
func (q *recordQuery) SetIDIn(idIn []string) RecordQueryInterface {
	q.idIn, q.set.idIn = slices.Clone(idIn), true
	return q
}

func (q *recordQuery) IsTokenSet() bool { return q.set.token }
func (q *recordQuery) GetToken() string { return q.token }
func (q *recordQuery) SetToken(token string) RecordQueryInterface {
	q.token, q.set.token = token, true
	return q
}

func (q *recordQuery) IsTokenInSet() bool   { return q.set.tokenIn }
func (q *recordQuery) GetTokenIn() []string { return slices.Clone(q.tokenIn) }
func (q *recordQuery) SetTokenIn(tokenIn []string) RecordQueryInterface {
	q.tokenIn, q.set.tokenIn = slices.Clone(tokenIn), true
	return q
}

func (q *recordQuery) IsOffsetSet() bool { return q.set.offset }
func (q *recordQuery) GetOffset() int    { return q.offset }
func (q *recordQuery) SetOffset(offset int) RecordQueryInterface {
	q.offset, q.set.offset = offset, true
	return q
}

func (q *recordQuery) IsOrderBySet() bool { return q.set.orderBy }
func (q *recordQuery) GetOrderBy() string { return q.orderBy }
func (q *recordQuery) SetOrderBy(orderBy string) RecordQueryInterface {
	q.orderBy, q.set.orderBy = orderBy, true
	return q
}

func (q *recordQuery) IsLimitSet() bool { return q.set.limit }
func (q *recordQuery) GetLimit() int    { return q.limit }
func (q *recordQuery) SetLimit(limit int) RecordQueryInterface {
	q.limit, q.set.limit = limit, true
	return q
}

func (q *recordQuery) IsCountOnlySet() bool { return q.set.countOnly }
func (q *recordQuery) GetCountOnly() bool   { return q.countOnly }
func (q *recordQuery) SetCountOnly(countOnly bool) RecordQueryInterface {
	q.countOnly, q.set.countOnly = countOnly, true
	return q
}

func (q *recordQuery) IsSortOrderSet() bool { return q.set.sortOrder }
func (q *recordQuery) GetSortOrder() string { return q.sortOrder }
func (q *recordQuery) SetSortOrder(sortOrder string) RecordQueryInterface {
	q.sortOrder, q.set.sortOrder = sortOrder, true
	return q
}

func (q *recordQuery) IsSoftDeletedIncludeSet() bool { return q.set.softDeletedInclude }
func (q *recordQuery) GetSoftDeletedInclude() bool   { return q.softDeletedInclude }
func (q *recordQuery) SetSoftDeletedInclude(include bool) RecordQueryInterface {
	q.softDeletedInclude, q.set.softDeletedInclude = include, true
	return q
}

// validateQuery checks a query through its interface only, so the same rules
// hold for a caller's own implementation, whose Validate may be laxer.
func validateQuery(q RecordQueryInterface) error {
	if isNil(q) {
		return validationErrorf("query is nil")
	}
	if q.IsColumnsSet() {
		cols := q.GetColumns()
		if len(cols) == 0 {
			return validationErrorf("columns are set but empty")
		}
		for _, c := range cols {
			if !isVaultColumn(c) {
				return validationErrorf("unknown column %q", c)
			}
		}
	}
	if q.IsIDSet() && q.GetID() == "" {
		return validationErrorf("id is empty")
	}
	if q.IsTokenSet() && q.GetToken() == "" {
		return validationErrorf("token is empty")
	}
	if q.IsIDInSet() {
		if err := validateInList("id", q.GetIDIn()); err != nil {
			return err
		}
	}
	if q.IsTokenInSet() {
		if err := validateInList("token", q.GetTokenIn()); err != nil {
			return err
		}
	}
	if q.IsLimitSet() && q.GetLimit() < 0 {
		return validationErrorf("limit %d is negative", q.GetLimit())
	}
	if q.IsOffsetSet() && q.GetOffset() < 0 {
		return validationErrorf("offset %d is negative", q.GetOffset())
	}
	if q.IsOrderBySet() && !isVaultColumn(q.GetOrderBy()) {
		return validationErrorf("cannot order by unknown column %q", q.GetOrderBy())
	}
	if q.IsSortOrderSet() && !strings.EqualFold(q.GetSortOrder(), ASC) && !strings.EqualFold(q.GetSortOrder(), DESC) {
		return validationErrorf("sort order %q is neither %q nor %q", q.GetSortOrder(), ASC, DESC)
	}
	if q.IsCountOnlySet() && q.GetCountOnly() && (q.IsLimitSet() || q.IsOffsetSet()) {
		return validationErrorf("count only cannot be combined with limit or offset")
	}
	return nil
}

func validateInList(what string, list []string) error {
	if len(list) == 0 {
		return validationErrorf("%s list is empty", what)
	}
	if slices.Contains(list, "") {
		return validationErrorf("%s list contains an empty %s", what, what)
	}
	return nil
}

// queryOrder returns the column and direction a validated query sorts by.
// Without an order the original gave no ORDER BY at all, so LIMIT/OFFSET
// pages could overlap or skip rows; ordering by the primary key makes pages
// cover the table exactly once on every database. With an order but no
// direction the original sorted descending, and so do we.
func queryOrder(q RecordQueryInterface) (column string, desc bool) {
	if !q.IsOrderBySet() {
		return COLUMN_ID, false
	}
	desc = true
	if q.IsSortOrderSet() {
		desc = strings.EqualFold(q.GetSortOrder(), DESC)
	}
	return q.GetOrderBy(), desc
}

// checkedQuery copies q, reading each of its getters once, and validates
// the copy. The store builds SQL only from such a copy: a caller's own
// implementation of RecordQueryInterface could otherwise answer the
// validation with one column name and the query with another.
func checkedQuery(q RecordQueryInterface) (*recordQuery, error) {
	if isNil(q) {
		return nil, validationErrorf("query is nil")
	}
	c := &recordQuery{}
	if c.set.columns = q.IsColumnsSet(); c.set.columns {
		c.columns = slices.Clone(q.GetColumns())
	}
	if c.set.id = q.IsIDSet(); c.set.id {
		c.id = q.GetID()
	}
	if c.set.idIn = q.IsIDInSet(); c.set.idIn {
		c.idIn = slices.Clone(q.GetIDIn())
	}
	if c.set.token = q.IsTokenSet(); c.set.token {
		c.token = q.GetToken()
	}
	if c.set.tokenIn = q.IsTokenInSet(); c.set.tokenIn {
		c.tokenIn = slices.Clone(q.GetTokenIn())
	}
	if c.set.offset = q.IsOffsetSet(); c.set.offset {
		c.offset = q.GetOffset()
	}
	if c.set.limit = q.IsLimitSet(); c.set.limit {
		c.limit = q.GetLimit()
	}
	if c.set.orderBy = q.IsOrderBySet(); c.set.orderBy {
		c.orderBy = q.GetOrderBy()
	}
	if c.set.sortOrder = q.IsSortOrderSet(); c.set.sortOrder {
		c.sortOrder = q.GetSortOrder()
	}
	if c.set.countOnly = q.IsCountOnlySet(); c.set.countOnly {
		c.countOnly = q.GetCountOnly()
	}
	if c.set.softDeletedInclude = q.IsSoftDeletedIncludeSet(); c.set.softDeletedInclude {
		c.softDeletedInclude = q.GetSoftDeletedInclude()
	}
	if err := validateQuery(c); err != nil {
		return nil, err
	}
	return c, nil
}
