"""Quick start: a small ETL workflow, run in memory with no infrastructure.

    python -m graflow run examples/quickstart_etl.py
    python examples/quickstart_etl.py

``extract`` fetches orders, two transforms run in parallel, ``load`` joins their output.
Tasks talk through the run's channel; each task's return value is its result.
"""

from graflow import TaskExecutionContext, task, workflow

ORDERS = [
    {"id": 1, "customer": "ada", "amount": 120.0, "country": "JP"},
    {"id": 2, "customer": "lin", "amount": 35.5, "country": "US"},
    {"id": 3, "customer": "ada", "amount": 99.9, "country": "JP"},
    {"id": 4, "customer": "kim", "amount": 250.0, "country": "KR"},
]

with workflow("quickstart_etl") as etl:

    @task(inject_context=True)
    def extract(ctx: TaskExecutionContext) -> int:
        ctx.get_channel().set("orders", ORDERS)
        return len(ORDERS)

    @task
    def revenue_by_country(orders: list[dict]) -> dict[str, float]:
        # `orders` is filled from the channel key of the same name.
        totals: dict[str, float] = {}
        for order in orders:
            totals[order["country"]] = totals.get(order["country"], 0.0) + order["amount"]
        return totals

    @task
    def top_customers(orders: list[dict]) -> list[str]:
        spent: dict[str, float] = {}
        for order in orders:
            spent[order["customer"]] = spent.get(order["customer"], 0.0) + order["amount"]
        return sorted(spent, key=spent.__getitem__, reverse=True)[:2]

    @task(inject_context=True)
    def load(ctx: TaskExecutionContext) -> dict:
        report = {
            "orders": ctx.get_result("extract"),
            "revenue": ctx.get_result("revenue_by_country"),
            "top_customers": ctx.get_result("top_customers"),
        }
        ctx.get_channel().set("report", report)
        return report

    extract >> (revenue_by_country | top_customers).set_group_name("transform") >> load


if __name__ == "__main__":
    print(etl.execute())
