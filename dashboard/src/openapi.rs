//! The dashboard's routes in the OpenAPI document (`GET /api/openapi.json`
//! merges it with ingest's and the processor's). Sales answers are typed
//! with exact money; the rest are described by their documentation.

use utoipa::OpenApi;

use crate::{
    bulk, customer_figures, customers_api, export, forecast_api, fraud_api, inventory_api, live, operations_api,
    rollups, sales, search, sql_api, views,
};

#[derive(OpenApi)]
#[openapi(
    paths(sales::summary, sales::revenue, sales::top_products, bulk::statuses, bulk::bulk, export::export_csv, export::start, export::status, export::cancel, export::list, export::download, forecast_api::demand_forecast, inventory_api::inventory, fraud_api::fraud_stats, fraud_api::fraud_audit, fraud_api::fraud_context, views::heatmap, views::funnel, views::fraud_queue, views::low_stock, views::health, views::order_detail, search::search, sql_api::tables, sql_api::run, live::websocket, customers_api::recommendations, customers_api::personalized, customers_api::segments, customers_api::clv, customers_api::cohorts, customers_api::new_vs_returning, operations_api::operations),
    components(schemas(
        sales::Summary, sales::Revenue, rollups::RevenueRow, sales::CategoryTotal, sales::Totals, sales::Comparison,
        rollups::Served, sales::TopProducts, sales::TopProduct, export::ExportJob, export::ExportState, schemas::Amount, views::Heatmap,
        views::HeatCell, views::Funnel, views::FunnelStep, views::FraudQueue, views::FlaggedOrder, views::LowStock,
        schemas::ProductView, fraud_api::FraudStats, fraud_api::FraudCounts, fraud_api::ReasonCount, fraud_api::ReviewLog,
        fraud_api::Review, bulk::Contract, bulk::StatusStep, bulk::BulkAnswer, bulk::BulkResult, bulk::Outcome, export::ExportList,
        search::SearchPage, search::OrderRow, views::OrderDetail, views::LakeOrder, views::LakeItem, views::LakeEvent,
        fraud_api::FraudContext, fraud_api::ContextOrder, fraud_api::Usual, fraud_api::Place, fraud_api::Ip,
        fraud_api::EarlierFlag, fraud_api::Screening, fraud_api::CustomerHistory, inventory_api::InventoryPage, forecast_api::DemandForecast, forecast_api::ForecastPoint,
        forecast_api::HistoryPoint, forecast_api::BacktestErrors, sql_api::TableList, sql_api::TableInfo, sql_api::ColumnInfo,
        customers_api::Recommendation, customers_api::Recommendations, customers_api::PersonalizedRecommendations,
        schemas::customers::RecommendationReason, schemas::customers::Segment, customer_figures::CustomerRow,
        customer_figures::SegmentSummary, customer_figures::SegmentsAnswer, customer_figures::ClvBucket, customer_figures::Clv,
        customer_figures::Cohort, customer_figures::Cohorts, customer_figures::DayCustomers, customer_figures::NewVsReturning,
        operations_api::Operations, operations_api::OperationsDay, operations_api::Stage, operations_api::PaymentMethodFigures,
        operations_api::OutOfStock,
    )),
    tags((name = "dashboard"), (name = "analytics"), (name = "customers"), (name = "sql"), (name = "admin"))
)]
pub struct DashboardApi;
