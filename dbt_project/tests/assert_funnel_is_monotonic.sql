-- Every funnel row narrows step by step: converted ≤ engaged ≤ clicked ≤ delivered ≤ sent.
select *
from {{ ref('fct_funnel_daily') }}
where not (converted <= engaged and engaged <= clicked and clicked <= delivered and delivered <= sent)
