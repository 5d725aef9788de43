package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/example/monolith/contexts/customer/internal/store"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)

func customer(id, userID string, createdAt time.Time) store.CreateCustomerParams {
	return store.CreateCustomerParams{
		ID: id, UserID: userID, Email: userID + "@example.com", Name: "Name " + id, Tier: "free",
		Active: true, CreatedAt: createdAt, UpdatedAt: createdAt,
	}
}

func create(t *testing.T, q *store.Queries, p store.CreateCustomerParams) {
	t.Helper()
	if n, err := q.CreateCustomer(context.Background(), p); err != nil || n != 1 {
		t.Fatalf("CreateCustomer(%s) = %d, %v; want 1 row", p.ID, n, err)
	}
}

// same compares rows field by field; times with Equal, as drivers differ in
// the location they return.
func same(t *testing.T, got store.Customer, want store.CreateCustomerParams) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.Email != want.Email || got.Name != want.Name ||
		got.Tier != want.Tier || got.Active != want.Active || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("row = %+v, want %+v", got, want)
	}
}

func TestCreateCustomerOncePerUser(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx, q := context.Background(), store.New(d)
		first := customer("c1", "u1", t0)
		create(t, q, first)

		again := customer("c2", "u1", t0.Add(time.Second))
		if n, err := q.CreateCustomer(ctx, again); err != nil || n != 0 {
			t.Fatalf("second customer for u1 = %d rows, %v; want 0 rows and no error", n, err)
		}
		row, err := q.GetCustomerByUserID(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		same(t, row, first)
		if row, err = q.GetCustomer(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		same(t, row, first)
		if _, err := q.GetCustomer(ctx, "c2"); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("GetCustomer(c2) = %v, want sql.ErrNoRows", err)
		}
	})
}

func TestListCustomersNewestFirst(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx, q := context.Background(), store.New(d)
		// Created out of order; c3 and c4 share a timestamp and are ordered by id.
		for _, c := range []store.CreateCustomerParams{
			customer("c2", "u2", t0.Add(2*time.Second)),
			customer("c1", "u1", t0.Add(time.Second)),
			customer("c3", "u3", t0.Add(3*time.Second)),
			customer("c4", "u4", t0.Add(3*time.Second)),
		} {
			create(t, q, c)
		}
		for _, tc := range []struct {
			limit int32
			want  []string
		}{
			{10, []string{"c4", "c3", "c2", "c1"}},
			{2, []string{"c4", "c3"}},
		} {
			rows, err := q.ListCustomers(ctx, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rows {
				got = append(got, r.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("ListCustomers(%d) = %v, want %v", tc.limit, got, tc.want)
			}
		}
	})
}

func TestUpdateCustomerDetails(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx, q := context.Background(), store.New(d)
		c := customer("c1", "u1", t0)
		create(t, q, c)
		for _, tc := range []struct {
			name, tier sql.NullString
			wantName   string
			wantTier   string
		}{
			{name: sql.NullString{String: "Ada", Valid: true}, wantName: "Ada", wantTier: "free"},
			{tier: sql.NullString{String: "pro", Valid: true}, wantName: "Ada", wantTier: "pro"},
			{name: sql.NullString{String: "Grace", Valid: true}, tier: sql.NullString{String: "enterprise", Valid: true}, wantName: "Grace", wantTier: "enterprise"},
		} {
			c.UpdatedAt = c.UpdatedAt.Add(time.Minute)
			row, err := q.UpdateCustomerDetails(ctx, store.UpdateCustomerDetailsParams{ID: "c1", Name: tc.name, Tier: tc.tier, UpdatedAt: c.UpdatedAt})
			if err != nil {
				t.Fatal(err)
			}
			c.Name, c.Tier = tc.wantName, tc.wantTier
			same(t, row, c)
		}
		_, err := q.UpdateCustomerDetails(ctx, store.UpdateCustomerDetailsParams{ID: "nope", Name: sql.NullString{String: "X", Valid: true}, UpdatedAt: t0})
		if !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("update of an unknown customer = %v, want sql.ErrNoRows", err)
		}
	})
}

func TestDeactivateCustomerOfUser(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx, q := context.Background(), store.New(d)
		c := customer("c1", "u1", t0)
		create(t, q, c)

		later := t0.Add(time.Hour)
		row, err := q.DeactivateCustomerOfUser(ctx, store.DeactivateCustomerOfUserParams{UserID: "u1", UpdatedAt: later})
		if err != nil {
			t.Fatal(err)
		}
		c.Active, c.UpdatedAt = false, later
		same(t, row, c)
		for _, user := range []string{"u1", "unknown"} { // already inactive, missing
			_, err := q.DeactivateCustomerOfUser(ctx, store.DeactivateCustomerOfUserParams{UserID: user, UpdatedAt: later.Add(time.Hour)})
			if !errors.Is(err, sql.ErrNoRows) {
				t.Fatalf("deactivate %s = %v, want sql.ErrNoRows", user, err)
			}
		}
		if row, err = q.GetCustomer(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		same(t, row, c)
	})
}

func TestCreateDealNeedsTheCustomer(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx, q := context.Background(), store.New(d)
		create(t, q, customer("c1", "u1", t0))
		deal := store.CreateDealParams{ID: "d1", CustomerID: "c1", AmountCents: 1 << 40, Currency: "EUR", WonAt: t0}
		if err := q.CreateDeal(ctx, deal); err != nil {
			t.Fatal(err)
		}
		deal.ID, deal.CustomerID = "d2", "unknown"
		if err := q.CreateDeal(ctx, deal); err == nil {
			t.Fatal("deal of an unknown customer inserted; want a foreign key violation")
		}
		var (
			n      int
			amount int64
			wonAt  time.Time
		)
		if err := d.QueryRowContext(ctx, `SELECT COUNT(*), MAX(amount_cents) FROM deals`).Scan(&n, &amount); err != nil || n != 1 || amount != 1<<40 {
			t.Fatalf("deals = %d (max amount %d), %v; want 1 of %d", n, amount, err, int64(1<<40))
		}
		if err := d.QueryRowContext(ctx, `SELECT won_at FROM deals WHERE id = 'd1'`).Scan(&wonAt); err != nil || !wonAt.Equal(t0) {
			t.Fatalf("won_at = %v, %v; want %v", wonAt, err, t0)
		}
	})
}
